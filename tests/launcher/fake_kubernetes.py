"""A recorded Kubernetes API for agent-run --engine kubernetes: the calls the launcher makes, answered
as an API server with the agent-sandbox controller and a kubelet behind it would, on 127.0.0.1.
aiohttp (a project dependency) serves it in a thread; the official client talks to it through a
kubeconfig like any cluster's, REST, log streaming and exec's websocket channels included.

What the pod "does" is given by the test as a Pod: the lines of its log (the task's, ending with
its done line), the files an exec may read (the bundle, the report), and what the proxy's and the
gateway's access-log containers hold. Every request is recorded for the test to judge.

(kmock was tried first: its pytest plugin needs pytest-asyncio and loads into every pytest run on
the machine; and the exec websocket protocol had to be spoken here anyway.)
"""
from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

CLAIMS = "/apis/extensions.agents.x-k8s.io/v1beta1/namespaces/{ns}/sandboxclaims"
SANDBOXES = "/apis/agents.x-k8s.io/v1beta1/namespaces/{ns}/sandboxes"


@dataclass
class Pod:
    log: list[str]                       # the agent container's log, line by line
    files: dict = field(default_factory=dict)     # path -> bytes an exec of base64 may read
    exit_code: int = 0
    ip: str = "10.44.0.7"
    hold: bool = True                    # like the task: the log stays open until `touch .../fetched`
    finishes: bool = True                # False: the pod never says it is done (a run that overstays)


class FakeCluster:
    def __init__(self, pod_for, access_logs: dict | None = None, namespace: str = "agent-sandbox"):
        self.pod_for = pod_for            # claim -> Pod
        self.access_logs = access_logs or {"agent-proxy": [], "agent-gateway": []}   # or () -> that, when asked
        self.namespace = namespace
        self.requests: list[tuple[str, str]] = []
        self.claims: dict[str, dict] = {}
        self.deleted: list[str] = []
        self.pods: dict[str, Pod] = {}
        self.fetched: dict[str, asyncio.Event] = {}
        self.execs: list[list[str]] = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    # --- the server --------------------------------------------------------------------------------

    def _serve(self):
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        ns = "{ns}"
        app.router.add_post(CLAIMS.format(ns=ns), self.create_claim)
        app.router.add_get(CLAIMS.format(ns=ns) + "/{name}", self.get_claim)
        app.router.add_delete(CLAIMS.format(ns=ns) + "/{name}", self.delete_claim)
        app.router.add_get(SANDBOXES.format(ns=ns) + "/{name}", self.get_sandbox)
        app.router.add_get("/api/v1/namespaces/{ns}/pods", self.list_pods)
        app.router.add_get("/api/v1/namespaces/{ns}/pods/{name}", self.get_pod)
        app.router.add_get("/api/v1/namespaces/{ns}/pods/{name}/log", self.pod_log)
        app.router.add_get("/api/v1/namespaces/{ns}/pods/{name}/exec", self.pod_exec)
        app.router.add_post("/api/v1/namespaces/{ns}/pods/{name}/exec", self.pod_exec)
        runner = web.AppRunner(app)
        self.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self.runner = runner
        self.ready.set()
        self.loop.run_forever()

    def close(self):
        async def stop():
            await self.runner.cleanup()
        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def kubeconfig(self, folder: Path) -> Path:
        path = folder / "kubeconfig"
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{self.port}"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": self.namespace}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}]}))
        return path

    def _note(self, request):
        self.requests.append((request.method, request.path_qs))

    # --- the controller and the kubelet -------------------------------------------------------------

    async def create_claim(self, request):
        self._note(request)
        claim = await request.json()
        name = claim["metadata"]["name"]
        if name in self.claims:
            return web.json_response({"kind": "Status", "code": 409, "reason": "AlreadyExists"}, status=409)
        claim.setdefault("metadata", {})["uid"] = f"uid-{name}"
        claim["status"] = {"sandbox": {"name": f"sandbox-{name}"},
                           "conditions": [self._condition("Ready", "True", "DependenciesReady")]}
        self.claims[name] = claim
        self.pods[f"pod-{name}"] = self.pod_for(claim)
        self.fetched[f"pod-{name}"] = asyncio.Event()
        return web.json_response(claim, status=201)

    @staticmethod
    def _condition(kind, status, reason):
        return {"type": kind, "status": status, "reason": reason, "message": "",
                "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    async def get_claim(self, request):
        self._note(request)
        claim = self.claims.get(request.match_info["name"])
        if claim is None:
            return web.json_response({"kind": "Status", "code": 404, "reason": "NotFound"}, status=404)
        pod = f"pod-{claim['metadata']['name']}"
        if self.fetched[pod].is_set() and not any(c["type"] == "Finished" for c in claim["status"]["conditions"]):
            reason = "PodSucceeded" if self.pods[pod].exit_code == 0 else "PodFailed"
            claim["status"]["conditions"].append(self._condition("Finished", "True", reason))
        return web.json_response(claim)

    async def delete_claim(self, request):
        self._note(request)
        name = request.match_info["name"]
        if self.claims.pop(name, None) is None:
            return web.json_response({"kind": "Status", "code": 404, "reason": "NotFound"}, status=404)
        self.deleted.append(name)
        event = self.fetched.get(f"pod-{name}")
        if event:
            event.set()  # the pod goes with the claim
        return web.json_response({"kind": "Status", "status": "Success"})

    async def get_sandbox(self, request):
        self._note(request)
        name = request.match_info["name"]
        claim = name.removeprefix("sandbox-")
        return web.json_response({"apiVersion": "agents.x-k8s.io/v1beta1", "kind": "Sandbox",
                                  "metadata": {"name": name, "annotations": {"agents.x-k8s.io/pod-name": f"pod-{claim}"}},
                                  "status": {"conditions": []}})

    def _pod_json(self, name, pod: Pod | None, labels=None):
        done = self.fetched.get(name)
        phase = "Running" if pod is None or not (done and done.is_set()) else (
            "Succeeded" if pod.exit_code == 0 else "Failed")
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": self.namespace,
                                                                 "labels": labels or {}},
                "spec": {"containers": [{"name": "agent", "image": "agent-image:latest"}]},
                "status": {"phase": phase, "podIP": pod.ip if pod else "10.44.9.9"}}

    async def get_pod(self, request):
        self._note(request)
        name = request.match_info["name"]
        return web.json_response(self._pod_json(name, self.pods.get(name)))

    async def list_pods(self, request):
        self._note(request)
        selector = request.query.get("labelSelector", "")
        role = selector.split("=", 1)[1] if "=" in selector else ""
        items = [self._pod_json(f"{role}-5d9f", None, {"app.kubernetes.io/name": role})] \
            if role in ("agent-proxy", "agent-gateway") else []
        return web.json_response({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items})

    async def pod_log(self, request):
        self._note(request)
        name, container = request.match_info["name"], request.query.get("container")
        if container == "access-log":
            role = name.rsplit("-", 1)[0]
            logs = self.access_logs() if callable(self.access_logs) else self.access_logs
            return web.Response(text="".join(line + "\n" for line in logs.get(role, [])))
        pod = self.pods[name]
        response = web.StreamResponse()
        await response.prepare(request)
        for line in pod.log if pod.finishes else pod.log[:-1]:
            await response.write((line + "\n").encode())
            await asyncio.sleep(0.01)
        if request.query.get("follow") == "true" and (pod.hold or not pod.finishes):
            await self.fetched[name].wait()
        await response.write_eof()
        return response

    async def pod_exec(self, request):
        self._note(request)
        name = request.match_info["name"]
        command = request.query.getall("command")
        self.execs.append(command)
        socket = web.WebSocketResponse(protocols=("v4.channel.k8s.io",))
        await socket.prepare(request)
        pod = self.pods[name]
        status = {"metadata": {}, "status": "Success"}
        if command[0] == "base64" and command[-1] in pod.files:
            await socket.send_bytes(b"\x01" + base64.b64encode(pod.files[command[-1]]))
        elif command[0] == "touch" and command[-1].endswith("/fetched"):
            self.fetched[name].set()
        else:
            await socket.send_bytes(b"\x02" + f"{command[0]}: cannot do that here".encode())
            status = {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
                      "details": {"causes": [{"reason": "ExitCode", "message": "1"}]}}
        await socket.send_bytes(b"\x03" + json.dumps(status).encode())
        await socket.close()
        return socket
