"""The Kubernetes deployment of a bypass profile, for kubernetes-sigs/agent-sandbox (v1beta1):
plain YAML that `kubectl apply -k` takes, rendered from the same profile and image contract as
everything else, and the invariants `render-profiles --check` holds it to.

    namespace.yaml            the namespace, Pod Security "restricted" enforced
    agent-template.yaml       SandboxTemplate: the agent's pod (uid 1000, read-only root, no
                              capabilities, RuntimeDefault seccomp, no service account token, no DNS)
                              and its managed network policy (egress: the proxy and the gateway only)
    agent-warm-pool.yaml      SandboxWarmPool of that template (claims name it)
    agent-run-task.yaml       ConfigMap: the task the agent pod runs (clone, CLI, collect, hold)
    egress-proxy.yaml         Squid: ConfigMap from the allowlist, Deployment, Service, NetworkPolicy
    credential-gateway.yaml   agent-gateway: ConfigMap, Deployment, Service, NetworkPolicy; its keys
                              come from a Secret that kustomize makes from keys/<vendor> files
    kustomization.yaml        the above, the namespace, the Secret generator
    examples/sandbox-claim.yaml   a claim, with ttlSecondsAfterFinished (agent-run makes its own)

Pure: nothing here touches the disk but reading the image contract and the task script.
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from egress.gateway import PLACEHOLDER_KEY, VENDORS, proxy_allowlist, render_gateway_config, vendors_from_allowlist
from egress.gateway_github import add_github_routes
from egress.github_policy import render_policy
from egress.squid import render_squid
from image import layout
from renderer.model import PolicyModel, ProfileError

NAMESPACE = "agent-sandbox"
API_VERSION = "extensions.agents.x-k8s.io/v1beta1"
PROXY, GATEWAY, KEYS, TASK = "agent-proxy", "agent-gateway", "agent-gateway-keys", "agent-run-task"
PROXY_PORT = 3128
PART_OF = {"app.kubernetes.io/part-of": "agent-sandbox"}
AGENT_LABELS = {"app.kubernetes.io/name": "agent", **PART_OF}
PROXY_LABELS = {"app.kubernetes.io/name": PROXY, **PART_OF}
GATEWAY_LABELS = {"app.kubernetes.io/name": GATEWAY, **PART_OF}
TASK_DIR = "/etc/agent-run"
REPORT_DIR = "/var/lib/agent-run/report"
# Where pods live in common clusters: the proxy and the gateway serve these sources (their network
# policies admit only the agent pods in any case). A profile's kubernetes.pod_cidrs replaces them.
POD_CIDRS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
# The internet, as the proxy and the gateway may reach it: 443 to anything but private, link-local
# (cloud metadata) and CGNAT ranges; Squid checks the resolved address again after its allowlist.
NOT_INTERNET = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10", "127.0.0.0/8")
DEFAULTS = {"cpu": "2", "memory": "4Gi", "ephemeral_storage": "10Gi", "workspace_size": "8Gi", "memory_dirs_size": "1Gi",
            "warm_pool_replicas": 0, "ttl_seconds_after_finished": 600, "runtime_class_name": None,
            "pod_cidrs": list(POD_CIDRS)}
HEADER = "# Rendered by render-profiles --kubernetes from profiles/ and image/contract.json. Do not edit: edit the " \
         "profile and re-render.\n"
CONTRACT = Path(__file__).resolve().parents[1] / "image" / "contract.json"
TASK_SCRIPT = Path(__file__).resolve().parent / "templates" / "kubernetes-task.py"
SECCOMP = {"type": "RuntimeDefault"}
LOCKED_CONTAINER = {"allowPrivilegeEscalation": False, "privileged": False, "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True, "seccompProfile": SECCOMP}


class _Literal(str):
    pass


def _dump(documents: list[dict]) -> bytes:
    class Dumper(yaml.SafeDumper):
        pass
    Dumper.add_representer(_Literal, lambda d, text: d.represent_scalar("tag:yaml.org,2002:str", text, style="|"))

    def literal(node):
        if isinstance(node, dict):
            return {k: literal(v) for k, v in node.items()}
        if isinstance(node, list):
            return [literal(v) for v in node]
        return _Literal(node) if isinstance(node, str) and "\n" in node else node
    text = "---\n".join(yaml.dump(literal(d), Dumper=Dumper, sort_keys=False, width=120) for d in documents)
    return (HEADER + text).encode()


def settings(model: PolicyModel) -> dict:
    return {**DEFAULTS, **model.kubernetes}


def _contract() -> dict:
    return json.loads(CONTRACT.read_text())


def _writable_dirs(contract: dict) -> list[str]:
    """The agent's writable folders, outermost only (/home/agent holds .claude, .codex, .gemini),
    and the sticky ones (/tmp)."""
    folders = sorted(set(contract["agent_writable_dirs"]) | {d["path"] for d in contract["sticky_dirs"]})
    return [f for f in folders if not any(f != o and f.startswith(o.rstrip("/") + "/") for o in folders)]


def _volume_name(path: str) -> str:
    return path.strip("/").replace("/", "-").replace(".", "") or "root"


def _gateway_ports(config: dict) -> dict[str, int]:
    ports = {route["name"]: route["port"] for route in config["routes"]}
    ports.update({route["name"]: route["port"] for route in config.get("github", {}).get("routes", [])})
    return ports


# --- the parts ------------------------------------------------------------------------------------------

def gateway_config(model: PolicyModel, cidrs: list[str]) -> dict:
    vendors = vendors_from_allowlist(list(model.network_allow)) or sorted(VENDORS)
    config = render_gateway_config(vendors, agent_subnets=cidrs, model_server_tools=model.model_server_tools)
    # The gateway is shared by every run of the namespace: GitHub is read-only through it (a write
    # would need a per-run repository and branch namespace, which one Deployment cannot hold).
    policy = render_policy(model.tripwire, repository=None, run_id="kubernetes")
    return json.loads(add_github_routes(config, policy, with_token=False))


def agent_env(model: PolicyModel, ports: dict) -> list[dict]:
    """The addresses come from the Services' variables ($(AGENT_PROXY_SERVICE_HOST)), expanded by
    the kubelet: the pod needs no DNS. Only placeholders: the keys are in the gateway alone."""
    gateway = f"$({GATEWAY.upper().replace('-', '_')}_SERVICE_HOST)"
    proxy = f"http://$({PROXY.upper().replace('-', '_')}_SERVICE_HOST):{PROXY_PORT}"
    env = [{"name": "AGENT_PROFILE", "value": model.name},
           # An emptyDir is root's (group fsGroup): git would call the agent's own repository dubious.
           {"name": "GIT_CONFIG_COUNT", "value": "1"}, {"name": "GIT_CONFIG_KEY_0", "value": "safe.directory"},
           {"name": "GIT_CONFIG_VALUE_0", "value": layout.WORKSPACE},
           {"name": "AGENT_WORKSPACE", "value": layout.WORKSPACE},
           {"name": "AGENT_REPORT", "value": f"{REPORT_DIR}/report.json"},
           *({"name": name, "value": proxy} for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy",
                                                        "ALL_PROXY")),
           *({"name": name, "value": f"{gateway},localhost,127.0.0.1"} for name in ("NO_PROXY", "no_proxy"))]
    for name, vendor in sorted(VENDORS.items()):
        env.append({"name": vendor.placeholder_env, "value": PLACEHOLDER_KEY})
        if vendor.base_url_env:
            env.append({"name": vendor.base_url_env, "value": f"http://{gateway}:{ports[name]}"})
    return env


def agent_template(model: PolicyModel, config: dict, contract: dict) -> dict:
    opts = settings(model)
    ports = _gateway_ports(config)
    writable = _writable_dirs(contract)
    volumes, mounts = [], []
    for folder in [*writable, REPORT_DIR]:
        name = _volume_name(folder)
        # Only the workspace may be a disk folder: any other writable mount that is not in memory
        # is refused by the entrypoint's preflight (as a host folder would be).
        on_disk = folder == layout.WORKSPACE
        volumes.append({"name": name, "emptyDir": {"sizeLimit": opts["workspace_size"]} if on_disk
                        else {"medium": "Memory", "sizeLimit": opts["memory_dirs_size"]}})
        mounts.append({"name": name, "mountPath": folder})
    volumes.append({"name": "task", "configMap": {"name": TASK, "defaultMode": 0o444}})
    mounts.append({"name": "task", "mountPath": TASK_DIR, "readOnly": True})
    # The image's baked files in $HOME, hidden by the home emptyDir: the same files, rendered from
    # the same profile, root's and read-only from a ConfigMap, each bound at its own path. The
    # entrypoint's integrity check holds them to the image's manifest (a ConfigMap of another
    # profile version than the image's is refused), as it holds the image's own.
    home_files = baked_home_files(model)
    if home_files:
        volumes.append({"name": "baked-home", "configMap": {"name": home_config_map_name(model), "defaultMode": 0o444}})
        mounts += [{"name": "baked-home", "mountPath": path, "subPath": key, "readOnly": True}
                   for key, (path, _) in sorted(home_files.items())]
    limits = {"cpu": opts["cpu"], "memory": opts["memory"], "ephemeral-storage": opts["ephemeral_storage"]}
    container = {
        "name": "agent", "image": layout.AGENT_IMAGE.ref, "imagePullPolicy": "IfNotPresent",
        "command": ["python3", f"{TASK_DIR}/task.py"], "workingDir": layout.WORKSPACE,
        "env": agent_env(model, ports),
        "resources": {"limits": limits, "requests": {"cpu": "500m", "memory": "1Gi"}},
        "securityContext": {**LOCKED_CONTAINER, "runAsUser": layout.AGENT_UID, "runAsGroup": layout.AGENT_GID},
        "volumeMounts": mounts,
    }
    spec = {
        "automountServiceAccountToken": False, "enableServiceLinks": True,
        "dnsPolicy": "None", "dnsConfig": {"nameservers": ["127.0.0.1"]},  # no DNS: nothing to tunnel through
        "hostNetwork": False, "hostPID": False, "hostIPC": False, "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 15,
        **({"runtimeClassName": opts["runtime_class_name"]} if opts["runtime_class_name"] else {}),
        "securityContext": {"runAsNonRoot": True, "runAsUser": layout.AGENT_UID, "runAsGroup": layout.AGENT_GID,
                            "fsGroup": layout.AGENT_GID, "seccompProfile": SECCOMP},
        "containers": [container], "volumes": volumes,
    }
    gateway_ports = sorted(set(ports.values()))
    egress = [{"to": [{"podSelector": {"matchLabels": PROXY_LABELS}}], "ports": [{"protocol": "TCP",
                                                                                  "port": PROXY_PORT}]},
              {"to": [{"podSelector": {"matchLabels": GATEWAY_LABELS}}],
               "ports": [{"protocol": "TCP", "port": port} for port in gateway_ports]}]
    return {"apiVersion": API_VERSION, "kind": "SandboxTemplate",
            "metadata": {"name": f"agent-{model.name}", "labels": {**AGENT_LABELS, "agent-sandbox.dev/profile":
                                                                    model.name}},
            "spec": {"podTemplate": {"metadata": {"labels": {**AGENT_LABELS, "agent-sandbox.dev/profile": model.name}},
                                     "spec": spec},
                     "networkPolicyManagement": "Managed",
                     # No ingress rule: nothing may connect to an agent. Egress: the proxy and the gateway.
                     "networkPolicy": {"egress": egress},
                     # A claim may add variables (the run's task), never replace the template's.
                     "envVarsInjectionPolicy": "Allowed"}}


def baked_home_files(model: PolicyModel) -> dict[str, tuple[str, str]]:
    """{ConfigMap key: (path in the image, content)} of the profile's files under $HOME."""
    from renderer.outputs import render_profile
    prefix = layout.HOME + "/"
    return {out.path[len(prefix):].replace("/", "_"): (out.path, out.content.decode())
            for out in render_profile(model).values() if out.image == "agent" and out.path.startswith(prefix)}


def home_config_map_name(model: PolicyModel) -> str:
    return f"agent-home-{model.name}"


def home_config_map(model: PolicyModel) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": home_config_map_name(model),
                                                                  "labels": AGENT_LABELS},
            "data": {key: content for key, (_, content) in sorted(baked_home_files(model).items())}}


def warm_pool(model: PolicyModel) -> dict:
    return {"apiVersion": API_VERSION, "kind": "SandboxWarmPool",
            "metadata": {"name": f"agent-{model.name}", "labels": dict(PART_OF)},
            "spec": {"replicas": settings(model)["warm_pool_replicas"],
                     "sandboxTemplateRef": {"name": f"agent-{model.name}"}}}


def claim_example(model: PolicyModel) -> dict:
    return {"apiVersion": API_VERSION, "kind": "SandboxClaim",
            "metadata": {"name": "agent-run-example", "namespace": NAMESPACE, "labels": dict(PART_OF)},
            "spec": {"warmPoolRef": {"name": f"agent-{model.name}"},
                     "lifecycle": {"ttlSecondsAfterFinished": settings(model)["ttl_seconds_after_finished"],
                                   "shutdownPolicy": "Delete"},
                     "env": [{"name": "AGENT_RUN_CLI", "value": "claude"},
                             {"name": "AGENT_RUN_ARGS", "value": json.dumps(["-p", "fix the failing test"])},
                             {"name": "AGENT_RUN_REPOSITORY", "value": "OWNER/NAME"},
                             {"name": "AGENT_RUN_COMMIT", "value": "HEAD"}]}}


def _follower(path: str) -> list[str]:
    """A container's log that is the service's access log (the audit reads it through the API)."""
    script = ("import os,sys,time\np=sys.argv[1]\nwhile not os.path.exists(p): time.sleep(0.5)\nf=open(p)\n"
              "while True:\n l=f.readline()\n if l: sys.stdout.write(l); sys.stdout.flush()\n else: time.sleep(0.2)\n")
    return ["python3", "-c", script, path]


def _log_sidecar(path: str, volume: str, folder: str) -> dict:
    return {"name": "access-log", "image": layout.GATEWAY_IMAGE.ref, "imagePullPolicy": "IfNotPresent",
            "command": _follower(path), "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}},
            "securityContext": {**LOCKED_CONTAINER, "runAsUser": layout.GATEWAY_UID, "runAsGroup": layout.GATEWAY_GID},
            "volumeMounts": [{"name": volume, "mountPath": folder, "readOnly": True}]}


def _service_pod(labels: dict, containers: list, volumes: list, uid: int) -> dict:
    return {"automountServiceAccountToken": False, "enableServiceLinks": False, "dnsPolicy": "ClusterFirst",
            "securityContext": {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
                                "seccompProfile": SECCOMP},
            "containers": containers, "volumes": volumes}


def _deployment(name: str, labels: dict, pod: dict) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": pod}}}


def _service(name: str, labels: dict, ports: dict[str, int]) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": labels},
            "spec": {"selector": labels, "ports": [{"name": port_name, "port": port, "targetPort": port,
                                                    "protocol": "TCP"} for port_name, port in ports.items()]}}


def _service_policy(name: str, labels: dict, ports: list[int]) -> dict:
    """Only agent pods in; out: DNS to the cluster's resolver and 443 to the internet."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name,
                                                                                        "labels": dict(PART_OF)},
            "spec": {"podSelector": {"matchLabels": labels}, "policyTypes": ["Ingress", "Egress"],
                     "ingress": [{"from": [{"podSelector": {"matchLabels": AGENT_LABELS}}],
                                  "ports": [{"protocol": "TCP", "port": port} for port in ports]}],
                     "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name":
                                                                               "kube-system"}},
                                         "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                                 "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                                {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(NOT_INTERNET)}}],
                                 "ports": [{"protocol": "TCP", "port": 443}]}]}}


def proxy_documents(model: PolicyModel, cidrs: list[str]) -> list[dict]:
    try:
        squid = render_squid(proxy_allowlist(list(model.network_allow)), agent_subnets=cidrs, listen_port=PROXY_PORT)
    except ValueError as error:
        raise ProfileError(f"profile '{model.name}': kubernetes: {error}") from None
    site = "# Site settings for the agent-sandbox proxy (hosts_file, dns_nameservers).\n"
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{PROXY}-config", "labels": PROXY_LABELS},
                  "data": {"squid.conf": squid, "00-site.conf": site}}
    folders = {"config": layout.PROXY_CONFIG.rsplit("/", 1)[0], "log": layout.PROXY_LOG_DIR, "spool": "/var/spool/squid",
               "run": "/run"}
    squid_container = {
        "name": "squid", "image": layout.PROXY_IMAGE.ref, "imagePullPolicy": "IfNotPresent",
        "command": [*layout.PROXY_IMAGE.entrypoint, *layout.PROXY_IMAGE.cmd],
        "ports": [{"name": "proxy", "containerPort": PROXY_PORT}],
        "resources": {"limits": {"cpu": "1", "memory": "512Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
        "securityContext": {**LOCKED_CONTAINER, "runAsUser": 65534, "runAsGroup": 65534},
        "volumeMounts": [
            {"name": "config", "mountPath": layout.PROXY_CONFIG, "subPath": "squid.conf", "readOnly": True},
            {"name": "config", "mountPath": f"{layout.PROXY_INCLUDE_DIR}/00-site.conf", "subPath": "00-site.conf",
             "readOnly": True},
            *({"name": name, "mountPath": path} for name, path in folders.items() if name != "config")]}
    volumes = [{"name": "config", "configMap": {"name": f"{PROXY}-config"}},
               *({"name": name, "emptyDir": {"sizeLimit": "256Mi"}} for name in folders if name != "config")]
    pod = _service_pod(PROXY_LABELS, [squid_container, _log_sidecar(f"{layout.PROXY_LOG_DIR}/access.log", "log",
                                                                    layout.PROXY_LOG_DIR)], volumes, 65534)
    return [config_map, _deployment(PROXY, PROXY_LABELS, pod), _service(PROXY, PROXY_LABELS, {"proxy": PROXY_PORT}),
            _service_policy(PROXY, PROXY_LABELS, [PROXY_PORT])]


def gateway_documents(config: dict) -> list[dict]:
    ports = _gateway_ports(config)
    vendors = [route["name"] for route in config["routes"]]
    config_map = {"apiVersion": "v1", "kind": "ConfigMap",
                  "metadata": {"name": f"{GATEWAY}-config", "labels": GATEWAY_LABELS},
                  "data": {"config.json": json.dumps(config, indent=2, sort_keys=True) + "\n"}}
    state = {"state": layout.GATEWAY_STATE_DIR, "log": layout.GATEWAY_LOG_DIR, "tmp": "/tmp"}
    gateway = {
        "name": "gateway", "image": layout.GATEWAY_IMAGE.ref, "imagePullPolicy": "IfNotPresent",
        "command": [*layout.GATEWAY_IMAGE.entrypoint, *layout.GATEWAY_IMAGE.cmd],
        "ports": [{"name": name, "containerPort": port} for name, port in ports.items()],
        "readinessProbe": {"exec": {"command": ["test", "-e", layout.GATEWAY_READY]}, "periodSeconds": 2},
        "resources": {"limits": {"cpu": "1", "memory": "512Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
        "securityContext": {**LOCKED_CONTAINER, "runAsUser": layout.GATEWAY_UID, "runAsGroup": layout.GATEWAY_GID},
        "volumeMounts": [
            {"name": "config", "mountPath": layout.GATEWAY_CONFIG, "subPath": "config.json", "readOnly": True},
            # The keys: this container alone mounts them (no agent pod, no sidecar).
            {"name": "keys", "mountPath": layout.GATEWAY_SECRETS_DIR, "readOnly": True},
            *({"name": name, "mountPath": path} for name, path in state.items())]}
    volumes = [{"name": "config", "configMap": {"name": f"{GATEWAY}-config"}},
               {"name": "keys", "secret": {"secretName": KEYS, "defaultMode": 0o400,
                                            "items": [{"key": vendor, "path": vendor} for vendor in vendors]}},
               *({"name": name, "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"} if name == "tmp"
                  else {"sizeLimit": "256Mi"}} for name in state)]
    pod = _service_pod(GATEWAY_LABELS, [gateway, _log_sidecar(layout.GATEWAY_ACCESS_LOG, "log", layout.GATEWAY_LOG_DIR)],
                       volumes, layout.GATEWAY_UID)
    return [config_map, _deployment(GATEWAY, GATEWAY_LABELS, pod), _service(GATEWAY, GATEWAY_LABELS, ports),
            _service_policy(GATEWAY, GATEWAY_LABELS, sorted(set(ports.values())))]


def task_config_map() -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": TASK, "labels": AGENT_LABELS},
            "data": {"task.py": TASK_SCRIPT.read_text()}}


def namespace() -> dict:
    restricted = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "labels": {**PART_OF, **restricted}}}


def kustomization(vendors: list[str], files: list[str]) -> dict:
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "namespace": NAMESPACE,
            "resources": files,
            # Put each key in keys/<vendor> (mode 0600, never in git); kustomize makes the Secret.
            "secretGenerator": [{"name": KEYS, "files": [f"{vendor}=keys/{vendor}" for vendor in vendors],
                                 "type": "Opaque"}]}


def render(model: PolicyModel) -> dict[str, bytes]:
    """{file name: YAML} of the profile's deployment."""
    if not model.bypass:
        raise ProfileError(f"profile '{model.name}' is not a bypass profile; Kubernetes runs unattended agents only")
    cidrs = list(settings(model)["pod_cidrs"])
    config = gateway_config(model, cidrs)
    contract = _contract()
    files = {
        "namespace.yaml": [namespace()],
        "agent-template.yaml": [agent_template(model, config, contract)],
        "agent-warm-pool.yaml": [warm_pool(model)],
        "agent-run-task.yaml": [task_config_map(), home_config_map(model)],
        "egress-proxy.yaml": proxy_documents(model, cidrs),
        "credential-gateway.yaml": gateway_documents(config),
    }
    vendors = [route["name"] for route in config["routes"]]
    out = {name: _dump(documents) for name, documents in files.items()}
    out["kustomization.yaml"] = _dump([kustomization(vendors, list(files))])
    out["examples/sandbox-claim.yaml"] = _dump([claim_example(model)])
    return out


def key_vendors(files: dict[str, bytes]) -> list[str]:
    """The vendors whose key the kustomization's Secret takes (keys/<vendor>)."""
    generators = yaml.safe_load(files["kustomization.yaml"]).get("secretGenerator", [])
    return [entry.split("=", 1)[0] for generator in generators for entry in generator["files"]]


# --- the invariants ------------------------------------------------------------------------------------

def documents_of(files: dict[str, bytes]) -> list[tuple[str, dict]]:
    return [(name, doc) for name, text in files.items() for doc in yaml.safe_load_all(text) if doc]


def pod_specs(document: dict) -> list[tuple[str, dict]]:
    kind = document.get("kind")
    if kind == "SandboxTemplate":
        return [("agent", document["spec"]["podTemplate"]["spec"])]
    if kind == "Deployment":
        return [(document["metadata"]["name"], document["spec"]["template"]["spec"])]
    if kind == "Pod":
        return [(document["metadata"]["name"], document["spec"])]
    return []


def check(files: dict[str, bytes], profile: str) -> list[str]:
    """What must hold of every rendered deployment; each broken one, named."""
    problems = []
    where = f"kubernetes/{profile}"
    for name, document in documents_of(files):
        for pod_name, spec in pod_specs(document):
            at = f"{where}/{name}: {document['kind']} {document['metadata']['name']}"
            containers = spec.get("containers", []) + spec.get("initContainers", [])
            if spec.get("automountServiceAccountToken") is not False:
                problems.append(f"{at}: automountServiceAccountToken is not false")
            if any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")):
                problems.append(f"{at}: shares a host namespace")
            if any("hostPath" in volume for volume in spec.get("volumes", [])):
                problems.append(f"{at}: a hostPath volume")
            pod_context = spec.get("securityContext", {})
            for container in containers:
                context = {**pod_context, **container.get("securityContext", {})}
                label = f"{at}: container {container.get('name')}"
                if context.get("runAsNonRoot") is not True or context.get("runAsUser", 0) == 0:
                    problems.append(f"{label}: may run as root (runAsNonRoot true and a non-zero runAsUser needed)")
                if context.get("allowPrivilegeEscalation") is not False or context.get("privileged"):
                    problems.append(f"{label}: privilege escalation is not refused")
                if context.get("capabilities", {}).get("drop") != ["ALL"] or context.get("capabilities", {}).get("add"):
                    problems.append(f"{label}: capabilities are not all dropped")
                if context.get("readOnlyRootFilesystem") is not True:
                    problems.append(f"{label}: the root file system is writable")
            if pod_name != "agent":
                continue
            secret_volumes = {v["name"] for v in spec.get("volumes", []) if "secret" in v or "projected" in v}
            if secret_volumes:
                problems.append(f"{at}: the agent's pod mounts secrets: {sorted(secret_volumes)}")
            for container in containers:
                for variable in container.get("env", []):
                    if "valueFrom" in variable:
                        problems.append(f"{at}: variable {variable['name']} comes from elsewhere ({variable['valueFrom']})")
                    elif variable.get("value") and any(k in variable["value"] for k in ("sk-", "ghp_", "ghs_")):
                        problems.append(f"{at}: variable {variable['name']} looks like a key")
                if container.get("envFrom"):
                    problems.append(f"{at}: envFrom brings in variables from elsewhere")
            if spec.get("dnsPolicy") != "None" or spec.get("dnsConfig", {}).get("nameservers") != ["127.0.0.1"]:
                problems.append(f"{at}: the agent's pod has DNS (dnsPolicy must be None, nameserver 127.0.0.1)")
        if document.get("kind") == "SandboxTemplate":
            spec = document["spec"]
            at = f"{where}/{name}: SandboxTemplate {document['metadata']['name']}"
            policy = spec.get("networkPolicy") or {}
            if spec.get("networkPolicyManagement") != "Managed" or not policy:
                problems.append(f"{at}: no managed network policy (the default one opens the whole internet)")
            if policy.get("ingress"):
                problems.append(f"{at}: the network policy lets something connect to the agent")
            for rule in policy.get("egress", []):
                peers = rule.get("to") or [{}]
                for peer in peers:
                    labels = peer.get("podSelector", {}).get("matchLabels")
                    if set(peer) != {"podSelector"} or labels not in (PROXY_LABELS, GATEWAY_LABELS) or not rule.get("ports"):
                        problems.append(f"{at}: egress to {peer or 'anywhere'}: only the proxy and the gateway, on "
                                        f"their ports")
            if spec.get("envVarsInjectionPolicy") == "Overrides":
                problems.append(f"{at}: a claim may override the template's variables")
    return problems
