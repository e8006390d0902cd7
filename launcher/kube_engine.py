"""agent-run --engine kubernetes: the same run, on kubernetes-sigs/agent-sandbox, through the official
client (`kubernetes`, pinned), against the deployment `render-profiles --kubernetes` renders.

    your repository ── HEAD, pushed to its GitHub remote (checked: no uncommitted work)
        │
        ├── SandboxClaim agent-run-<run> (warm pool agent-<profile>; the task as variables:
        │   CLI, arguments, OWNER/NAME, the commit; ttlSecondsAfterFinished)
        │       the pod clones OWNER/NAME through the gateway's GitHub route (read-only there),
        │       runs the CLI, bundles what the agent did, prints `agent-run-task: done {...}`
        ├── its log followed (escaped) to your terminal until that line
        ├── the bundle and the run report read through exec, then `fetched` marked: the pod ends
        ├── the claim's Finished condition waited for; the bundle verified and fetched as data
        │   into refs/agent/<run>/... exactly as for a podman run
        └── the audit: the proxy's and the gateway's access logs (their sidecars' container logs),
            the lines of the agent pod's address while the run lasted

Nothing of the user's is mounted anywhere; no key is on the claim (the gateway holds them).
Signals and the timeout delete the claim (and with it the sandbox and its pod) and still write
the audit. The client's configuration is the user's (KUBECONFIG, ~/.kube/config, --kubeconfig,
--context), or the pod's own service account when agent-run itself runs in a cluster.
"""
from __future__ import annotations

import base64
import json
import queue
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from launcher import review, safefs, workspace
from launcher.commands import write_record
from launcher.execute import Cancel, Interrupted, Signals, conclude, select_lines
from launcher.plan import EXIT_TIMEOUT, PROG, Options, RunError
from launcher.terminal import shown

GROUP, VERSION = "extensions.agents.x-k8s.io", "v1beta1"
CORE_GROUP = "agents.x-k8s.io"
POD_NAME_ANNOTATION = "agents.x-k8s.io/pod-name"
DONE_LINE = "agent-run-task: done "
OUT = "/tmp/agent-run-out"
REPORT = "/var/lib/agent-run/report/report.json"
LABELS = {"proxy": "app.kubernetes.io/name=agent-proxy", "gateway": "app.kubernetes.io/name=agent-gateway"}
GITHUB_REMOTE = re.compile(r"^(?:https://github\.com/|git@github\.com:|ssh://git@github\.com/)"
                           r"(?P<owner>[A-Za-z0-9-]+)/(?P<name>[A-Za-z0-9._-]+?)(?:\.git)?/?$")
BUNDLE_LIMIT = 4 << 30
STARTUP_TIMEOUT = 600


@dataclass
class KubeTask:
    """What a claim carries and where the run's files go: all a plan needs, pure."""
    run_id: str
    claim: dict
    repository: str
    commit: str
    run_dir: Path
    warnings: list = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.claim["metadata"]["name"]


def github_repository(url: str) -> str | None:
    """OWNER/NAME of a github.com remote URL, or None."""
    found = GITHUB_REMOTE.match(url.strip())
    return f"{found['owner']}/{found['name']}" if found else None


def claim_for(options: Options, repository: str, commit: str, branch: str) -> dict:
    """The run's SandboxClaim: its task as variables (the template lets a claim add, never replace)."""
    env = {"AGENT_RUN_CLI": options.cli, "AGENT_RUN_ARGS": json.dumps(list(options.cli_args)),
           "AGENT_RUN_REPOSITORY": repository, "AGENT_RUN_COMMIT": commit, "AGENT_RUN_BRANCH": branch,
           "AGENT_RUN_ID": options.run_id, "AGENT_RUN_COLLECT_TIMEOUT": str(options.collect_timeout)}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "SandboxClaim",
            "metadata": {"name": f"agent-run-{options.run_id}".lower(), "namespace": options.namespace,
                         "labels": {"app.kubernetes.io/part-of": "agent-sandbox", "agent-sandbox.dev/run": options.run_id}},
            "spec": {"warmPoolRef": {"name": f"agent-{options.profile}"},
                     "lifecycle": {"ttlSecondsAfterFinished": 600, "shutdownPolicy": "Delete"},
                     "env": [{"name": k, "value": v} for k, v in env.items()]}}


def prepare(options: Options) -> tuple[KubeTask, workspace.Source]:
    """Read-only: the repository, its GitHub remote, the commit the pod will clone."""
    if options.mode != "copy":
        raise RunError("--mount is for podman: on Kubernetes the pod clones your repository, nothing is mounted")
    source = workspace.find_source(options.workspace)
    if source.head is None:
        raise RunError(f"{source.toplevel} has no commit yet; the pod clones a commit of yours: commit and push one")
    url = source.git(["config", "--get", "remote.origin.url"], check=False).stdout.decode().strip()
    repository = github_repository(url)
    if repository is None:
        raise RunError(f"{source.toplevel}: origin is {shown(url) or 'not set'}; --engine kubernetes clones from "
                       f"GitHub through the gateway: the repository needs a github.com origin (or use --engine podman)")
    dirty = source.git(["status", "--porcelain", "--untracked-files=normal"]).stdout.decode()
    if dirty.strip():
        raise RunError(f"{source.toplevel} has uncommitted changes; on Kubernetes the pod clones {repository} at "
                       f"your HEAD, so commit and push them first (or use --engine podman, which copies them)")
    run_dir = (options.run_dir or review.runs_root() / options.run_id).absolute()
    task = KubeTask(options.run_id, claim_for(options, repository, source.head, source.branch or "agent-run"),
                    repository, source.head, run_dir)
    in_history = workspace.blocked_in_history(source, options.blocked_globs)
    if in_history:
        task.warnings.append("blocked files are in HEAD's history (" + ", ".join(shown(p) for p in in_history) +
                             f"): the pod clones {repository}, history and all, so the agent can read them")
    task.warnings.append(f"the pod clones {repository} at {source.head[:12]}: that commit must be on GitHub "
                         f"(git push) and readable through the gateway")
    return task, source


def format_plan(task: KubeTask, options: Options) -> str:
    lines = [f"# agent-run {options.cli} --engine kubernetes: profile {options.profile}, run {task.run_id}, "
             f"namespace {options.namespace}", f"# run folder {task.run_dir} (0700): the bundle, the report, the audit"]
    lines += [f"# WARNING: {w}" for w in task.warnings]
    lines.append(f"# create SandboxClaim {task.name} ({GROUP}/{VERSION}):")
    lines.append(json.dumps(task.claim, indent=2))
    lines += [f"# wait for its sandbox and pod; follow the pod's log until '{DONE_LINE}...'",
              f"# exec: base64 {OUT}/result.bundle and {REPORT}; then touch {OUT}/fetched",
              "# wait for the claim's Finished condition; git bundle verify, fetch (fsck) into "
              f"refs/agent/{task.run_id}/...",
              f"# after {options.timeout} s, or on SIGINT, SIGTERM or SIGHUP: delete the claim",
              "# audit: the agent-proxy and agent-gateway pods' access-log containers, the pod's address, this run's "
              "time"]
    return "\n".join(lines) + "\n"


# --- the cluster ----------------------------------------------------------------------------------------

class Cluster:
    """The few calls a run makes, through the official client."""

    def __init__(self, options: Options):
        try:
            from kubernetes import client, config
            from kubernetes.client.rest import ApiException
        except ImportError:
            raise RunError("--engine kubernetes needs the official client: pip install 'agent-sandbox[kubernetes]' "
                           "(kubernetes==37.0.2)") from None
        self.ApiException = ApiException
        try:
            if options.kubeconfig or not _in_cluster():
                config.load_kube_config(config_file=str(options.kubeconfig) if options.kubeconfig else None,
                                        context=options.kube_context)
            else:
                config.load_incluster_config()
        except Exception as error:  # the client raises several kinds; every one means no cluster to talk to
            raise RunError(f"no Kubernetes configuration ({error}); pass --kubeconfig FILE or set KUBECONFIG") from None
        self.namespace = options.namespace
        self.core = client.CoreV1Api()
        self.custom = client.CustomObjectsApi()

    def create_claim(self, claim: dict) -> None:
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, "sandboxclaims", claim)

    def claim(self, name: str) -> dict:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, "sandboxclaims", name)

    def delete_claim(self, name: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, "sandboxclaims", name,
                                                        propagation_policy="Foreground")
        except self.ApiException as error:
            if error.status != 404:
                raise

    def sandbox(self, name: str) -> dict:
        return self.custom.get_namespaced_custom_object(CORE_GROUP, VERSION, self.namespace, "sandboxes", name)

    def pod(self, name: str):
        return self.core.read_namespaced_pod(name, self.namespace)

    def follow(self, pod: str, lines: "queue.Queue") -> threading.Thread:
        def read():
            try:
                response = self.core.read_namespaced_pod_log(pod, self.namespace, container="agent", follow=True,
                                                             _preload_content=False)
                pending = b""
                for chunk in response.stream(4096):
                    pending += chunk
                    *complete, pending = pending.split(b"\n")
                    for line in complete:
                        lines.put(line.decode("utf-8", errors="replace"))
                if pending:
                    lines.put(pending.decode("utf-8", errors="replace"))
            except Exception as error:  # the stream's end, however it ends, is the reader's end
                lines.put(error)
            lines.put(None)
        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        return thread

    def exec_text(self, pod: str, command: list[str], timeout: float = 300) -> str:
        from kubernetes.stream import stream
        response = stream(self.core.connect_get_namespaced_pod_exec, pod, self.namespace, container="agent",
                          command=command, stdin=False, stdout=True, stderr=True, tty=False, _preload_content=False)
        out = []
        deadline = time.monotonic() + timeout
        while response.is_open() and time.monotonic() < deadline:
            response.update(timeout=1)
            out.append(response.read_stdout())
        code = response.returncode
        response.close()
        if code not in (0, None):
            raise RunError(f"exec {' '.join(command[:2])} in {pod} exited {code}")
        return "".join(out)

    def access_log(self, role: str, since: float) -> list[str]:
        lines = []
        for pod in self.core.list_namespaced_pod(self.namespace, label_selector=LABELS[role]).items:
            text = self.core.read_namespaced_pod_log(pod.metadata.name, self.namespace, container="access-log",
                                                     since_seconds=max(1, int(time.time() - since) + 60))
            lines += text.splitlines()
        return lines


def _in_cluster() -> bool:
    return Path("/var/run/secrets/kubernetes.io/serviceaccount/token").exists()


# --- a run ----------------------------------------------------------------------------------------------

def wait_for(what: str, check, deadline: float, cancel: Cancel | None, interval: float = 1.0):
    while True:
        if cancel:
            cancel.check()
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(interval)


def condition(claim: dict, kind: str) -> dict | None:
    return next((c for c in (claim.get("status") or {}).get("conditions") or [] if c.get("type") == kind), None)


def pod_of(cluster: Cluster, claim_name: str) -> str | None:
    sandbox_name = ((cluster.claim(claim_name).get("status") or {}).get("sandbox") or {}).get("name")
    if not sandbox_name:
        return None
    sandbox = cluster.sandbox(sandbox_name)
    return ((sandbox.get("metadata") or {}).get("annotations") or {}).get(POD_NAME_ANNOTATION) or sandbox_name


def run(options: Options, cancel: Cancel | None = None, out=None) -> int:
    """One run on the cluster; the exit code as a podman run's. out: where the pod's log goes."""
    out = out or sys.stderr
    task, source = prepare(options)
    cluster = Cluster(options)
    for warning in task.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    task.run_dir.mkdir(parents=True, mode=0o700)
    record_path = task.run_dir / "run.json"

    def record(**fields):
        write_record(record_path, fields)
    record(run_id=options.run_id, cli=options.cli, profile=options.profile, mode="kubernetes", status="running",
           repository=str(source.toplevel), run_dir=str(task.run_dir), claim=task.name, namespace=options.namespace,
           started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), base=task.commit,
           read_only_patterns=list(options.read_only_globs))
    print(f"{PROG}: run {options.run_id} (kubernetes, claim {task.name} in {options.namespace}; folder "
          f"{task.run_dir})", file=sys.stderr)
    started = time.time()
    code, problems, refs, report, address = None, [], [], None, None
    with (Signals() if cancel is None else _NoSignals()) as signals:
        try:
            cluster.create_claim(task.claim)
            deadline = time.monotonic() + options.timeout
            pod = wait_for("the claim's pod", lambda: pod_of(cluster, task.name),
                           min(deadline, time.monotonic() + STARTUP_TIMEOUT), cancel)
            record(pod=pod)
            summary = follow_until_done(cluster, pod, deadline, cancel, out)
            address = cluster.pod(pod).status.pod_ip
            if summary.get("bundle"):
                refs, lost = fetch_bundle(cluster, pod, task, source)
                problems += lost
            if summary.get("report"):
                report = task.run_dir / "report.json"
                safefs.write_new(report, decode(cluster.exec_text(pod, ["base64", "-w0", REPORT])), 0o600)
            cluster.exec_text(pod, ["touch", f"{OUT}/fetched"])
            wait_for("the claim's Finished condition", lambda: condition(cluster.claim(task.name), "Finished"),
                     time.monotonic() + 120, cancel)
            code = int(summary.get("exit_code", 1))
        except Interrupted as interrupted:
            print(f"{PROG}: {interrupted}: deleting the claim", file=sys.stderr)
            code = 128 + interrupted.signum
            signals.received.append(interrupted.signum)
        except TimeoutError as waited:
            print(f"{PROG}: the run exceeded its time waiting for {waited}; deleting the claim", file=sys.stderr)
            code = EXIT_TIMEOUT
        except (RunError, OSError, ValueError, cluster.ApiException) as error:
            message = getattr(error, "reason", None) or str(error)
            print(f"{PROG}: {shown(str(message))}", file=sys.stderr)
            problems.append(str(message))
        finally:
            signals.tearing_down = True
            try:
                cluster.delete_claim(task.name)
            except Exception as error:  # the run's end must not hang on a failing API
                problems.append(f"deleting claim {task.name}: {error}")
            final = wrap_up(cluster, task, options, started, address, report, code, problems, refs, record,
                            bool(signals.received))
    return final


class _NoSignals:
    def __init__(self):
        self.received, self.tearing_down = [], False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def decode(text: str) -> bytes:
    try:
        data = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        raise RunError("the pod's answer through exec was not base64") from None
    if len(data) > BUNDLE_LIMIT:
        raise RunError(f"the pod's answer is larger than {BUNDLE_LIMIT} bytes")
    return data


def follow_until_done(cluster: Cluster, pod: str, deadline: float, cancel: Cancel | None, out) -> dict:
    """The pod's log, escaped, to out, until the task's done line; its summary."""
    lines: queue.Queue = queue.Queue()
    reader = None
    while True:
        if cancel:
            cancel.check()
        if time.monotonic() > deadline:
            raise TimeoutError("the agent")
        if reader is None:
            phase = cluster.pod(pod).status.phase
            if phase in ("Running", "Succeeded", "Failed"):
                reader = cluster.follow(pod, lines)
            else:
                time.sleep(1)
                continue
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None or isinstance(line, Exception):
            raise RunError(f"the pod's log ended before the task said it was done"
                           f"{f' ({line})' if isinstance(line, Exception) else ''}")
        out.write(shown(line) + "\n")
        out.flush()
        if line.startswith(DONE_LINE):
            try:
                return json.loads(line[len(DONE_LINE):])
            except ValueError:
                raise RunError("the task's done line is not JSON") from None


def fetch_bundle(cluster: Cluster, pod: str, task: KubeTask, source: workspace.Source) -> tuple[list, list]:
    """The bundle, read through exec, checked and fetched as data (as a podman run's)."""
    data = decode(cluster.exec_text(pod, ["base64", "-w0", f"{OUT}/result.bundle"]))
    bundle = task.run_dir / "result.bundle"
    safefs.write_new(bundle, data, 0o600)
    refs, refused = workspace.fetch_results(source, task.run_id, bundle)
    return refs, [f"result bundle: ref {shown(name)} refused (only branches, tags and the run's own refs come back)"
                  for name in refused]


def wrap_up(cluster: Cluster, task: KubeTask, options: Options, started: float, address: str | None,
            report: Path | None, code: int | None, problems: list, refs: list, record, interrupted: bool) -> int:
    until = time.time()
    for role, folder in (("proxy", "proxy-log"), ("gateway", "gateway-log")):
        lines = []
        if address:
            try:
                lines = select_lines(cluster.access_log(role, started), address, started, until, role == "proxy")
            except Exception as error:  # an audit with a named gap beats no audit
                problems.append(f"the {role}'s access log: {error}")
        else:
            problems.append(f"the {role}'s access log: the agent pod's address is unknown; nothing attributed")
        safefs.make_dir(task.run_dir / folder, 0o700)
        safefs.write_new(task.run_dir / folder / "access.log", "".join(line + "\n" for line in lines).encode(), 0o600)
    return conclude(task.run_dir, report, problems, record, code if code is not None else 1, refs, options.run_id,
                    interrupted)
