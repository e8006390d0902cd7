"""render-profiles --kubernetes: every manifest validates strictly (built-in kinds against the
Kubernetes schemas of each version supported, with kubernetes-validate; the agent-sandbox custom
resources against their CRDs' openAPIV3Schema with jsonschema, unknown fields refused as the API
server's strict validation does), the invariants hold and --check sees each one broken, and the
files land where a user runs `kubectl apply -k`."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from renderer import kubernetes
from renderer.cli import main
from renderer.model import load

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "renderer" / "schemas" / "kubernetes"
SUPPORTED = [f"1.{minor}.0" for minor in range(30, 38)]
PROFILES = ("autonomous", "ci")


@pytest.fixture(scope="module", params=PROFILES)
def rendered(request):
    return request.param, kubernetes.render(load(request.param))


def strict(schema):
    """A structural schema as the API server reads it: no field it does not name."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if schema.get("type") == "object" and "properties" in schema and "additionalProperties" not in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def crd_schemas() -> dict:
    found = {}
    for path in CRDS.glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
            found[key] = strict(version["schema"]["openAPIV3Schema"])
    return found


OBJECT_META = json.loads((Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / "v1.37.0-local-strict"
                          / "objectmeta-meta-v1.json").read_text())


def validate_custom(document: dict, schemas: dict) -> None:
    schema = schemas[(document["apiVersion"], document["kind"])]
    jsonschema.validate(document, schema)
    jsonschema.validate(document["metadata"], OBJECT_META)   # the CRD says only "object"


def test_the_crds_are_the_v1beta1_ones_agent_run_targets():
    schemas = crd_schemas()
    assert {("extensions.agents.x-k8s.io/v1beta1", kind) for kind in ("SandboxTemplate", "SandboxWarmPool",
                                                                       "SandboxClaim")} <= set(schemas)
    assert ("agents.x-k8s.io/v1beta1", "Sandbox") in schemas


def test_every_manifest_validates_strictly(rendered):
    profile, files = rendered
    schemas = crd_schemas()
    kinds = set()
    for name, document in kubernetes.documents_of(files):
        kinds.add(document["kind"])
        if name == "kustomization.yaml":
            continue
        if (document["apiVersion"], document["kind"]) in schemas:
            validate_custom(document, schemas)
            continue
        for version in SUPPORTED:
            kubernetes_validate.validate(document, version, strict=True)
    assert kinds == {"Namespace", "SandboxTemplate", "SandboxWarmPool", "SandboxClaim", "ConfigMap", "Deployment",
                     "Service", "NetworkPolicy", "Kustomization"}


def test_strict_validation_refuses_an_unknown_field(rendered):
    """The validation above can fail: a misspelt field is refused in each kind of document."""
    profile, files = rendered
    schemas = crd_schemas()
    documents = dict((d["kind"], d) for _, d in kubernetes.documents_of(files))
    template = copy.deepcopy(documents["SandboxTemplate"])
    template["spec"]["podTemplate"]["spec"]["containers"][0]["securityContext"]["runAsNonroot"] = True
    with pytest.raises(jsonschema.ValidationError, match="runAsNonroot"):
        validate_custom(template, schemas)
    claim = copy.deepcopy(documents["SandboxClaim"])
    claim["spec"]["lifecycle"]["ttlSecondsAfterFinish"] = 5
    with pytest.raises(jsonschema.ValidationError, match="ttlSecondsAfterFinish"):
        validate_custom(claim, schemas)
    deployment = copy.deepcopy(documents["Deployment"])
    deployment["spec"]["template"]["spec"]["automountServiceAcountToken"] = False
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, SUPPORTED[-1], strict=True)


def test_the_kustomization_names_every_file_and_the_keys(rendered):
    profile, files = rendered
    kustomization = yaml.safe_load(files["kustomization.yaml"])
    assert kustomization["namespace"] == "agent-sandbox"
    assert sorted(kustomization["resources"]) == sorted(n for n in files if n != "kustomization.yaml"
                                                        and not n.startswith("examples/"))
    (generator,) = kustomization["secretGenerator"]
    assert generator["name"] == "agent-gateway-keys"
    assert generator["files"] == ["anthropic=keys/anthropic", "gemini=keys/gemini", "openai=keys/openai"]


def test_the_agent_pod_is_as_the_issue_asks(rendered):
    profile, files = rendered
    documents = dict((d["kind"], d) for _, d in kubernetes.documents_of(files))
    template = documents["SandboxTemplate"]["spec"]
    pod = template["podTemplate"]["spec"]
    (agent,) = pod["containers"]
    assert agent["image"] == "agent-image:latest"
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
                                      "seccompProfile": {"type": "RuntimeDefault"}}
    assert agent["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert agent["securityContext"]["allowPrivilegeEscalation"] is False
    assert agent["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["automountServiceAccountToken"] is False and pod["dnsPolicy"] == "None"
    assert agent["resources"]["limits"] == {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "10Gi"}
    mounts = {m["mountPath"]: m["name"] for m in agent["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/workspace"]]["emptyDir"] == {"sizeLimit": "8Gi"}
    for folder in ("/home/agent", "/tmp", "/var/lib/agent-run/report"):
        assert volumes[mounts[folder]]["emptyDir"]["medium"] == "Memory"
    assert "runtimeClassName" not in pod
    env = {e["name"]: e["value"] for e in agent["env"]}
    assert env["HTTPS_PROXY"] == "http://$(AGENT_PROXY_SERVICE_HOST):3128"
    assert env["ANTHROPIC_BASE_URL"] == "http://$(AGENT_GATEWAY_SERVICE_HOST):8081"
    assert env["ANTHROPIC_API_KEY"] == env["OPENAI_API_KEY"] == "agent-sandbox-placeholder"
    assert template["envVarsInjectionPolicy"] == "Allowed"
    egress = template["networkPolicy"]["egress"]
    assert [rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for rule in egress] == \
        ["agent-proxy", "agent-gateway"]
    assert "ingress" not in template["networkPolicy"]
    claim = documents["SandboxClaim"]["spec"]
    assert claim["lifecycle"]["ttlSecondsAfterFinished"] == 600
    assert claim["warmPoolRef"] == {"name": f"agent-{profile}"} == {"name": documents["SandboxWarmPool"]["metadata"]["name"]}


def test_the_keys_are_mounted_into_the_gateway_alone_and_the_proxy_goes_out_on_443_only(rendered):
    profile, files = rendered
    deployments = {d["metadata"]["name"]: d for _, d in kubernetes.documents_of(files) if d["kind"] == "Deployment"}
    gateway = deployments["agent-gateway"]["spec"]["template"]["spec"]
    (keys,) = [v for v in gateway["volumes"] if "secret" in v]
    users = [c["name"] for c in gateway["containers"] if any(m["name"] == keys["name"] for m in c["volumeMounts"])]
    assert users == ["gateway"] and keys["secret"]["defaultMode"] == 0o400
    for name, deployment in deployments.items():
        if name != "agent-gateway":
            assert not [v for v in deployment["spec"]["template"]["spec"]["volumes"] if "secret" in v]
    policies = {d["metadata"]["name"]: d["spec"] for _, d in kubernetes.documents_of(files) if d["kind"] == "NetworkPolicy"}
    for name in ("agent-proxy", "agent-gateway"):
        spec = policies[name]
        assert spec["ingress"][0]["from"] == [{"podSelector": {"matchLabels": kubernetes.AGENT_LABELS}}]
        internet = spec["egress"][1]
        assert internet["ports"] == [{"protocol": "TCP", "port": 443}]
        assert "169.254.0.0/16" in internet["to"][0]["ipBlock"]["except"]
    config = json.loads(next(d for _, d in kubernetes.documents_of(files) if d["kind"] == "ConfigMap"
                             and d["metadata"]["name"] == "agent-gateway-config")["data"]["config.json"])
    assert config["github"]["policy"]["repository"] is None   # shared: GitHub read-only through it
    squid = next(d for _, d in kubernetes.documents_of(files) if d["kind"] == "ConfigMap"
                 and d["metadata"]["name"] == "agent-proxy-config")["data"]["squid.conf"]
    assert "acl allowlisted dstdomain -n github.com" in squid and "api.anthropic.com" not in \
        squid.split("acl model_api")[0]


def test_a_profile_chooses_the_runtime_class_and_the_sizes(tmp_path):
    (tmp_path / "profiles").mkdir()
    for name in ("common.yaml", "profile.schema.json", "autonomous.yaml"):
        (tmp_path / "profiles" / name).write_text((ROOT / "profiles" / name).read_text())
    (tmp_path / "profiles" / "gvisor.yaml").write_text(
        "profile: gvisor\nextends: autonomous\ndescription: autonomous under gVisor\n"
        "kubernetes:\n  runtime_class_name: gvisor\n  memory: 8Gi\n  warm_pool_replicas: 2\n")
    files = kubernetes.render(load("gvisor", tmp_path))
    documents = dict((d["kind"], d) for _, d in kubernetes.documents_of(files))
    pod = documents["SandboxTemplate"]["spec"]["podTemplate"]["spec"]
    assert pod["runtimeClassName"] == "gvisor"
    assert pod["containers"][0]["resources"]["limits"]["memory"] == "8Gi"
    assert documents["SandboxWarmPool"]["spec"]["replicas"] == 2
    (tmp_path / "profiles" / "bad.yaml").write_text("profile: bad\nextends: autonomous\ndescription: x\n"
                                                    "kubernetes:\n  runtime_class: gvisor\n")
    with pytest.raises(Exception, match="runtime_class"):
        load("bad", tmp_path)


@pytest.mark.parametrize("break_it, said", [
    (lambda pod, tpl: pod["containers"][0]["env"].append({"name": "KEY", "valueFrom": {"secretKeyRef": {
        "name": "agent-gateway-keys", "key": "anthropic"}}}), "variable KEY comes from elsewhere"),
    (lambda pod, tpl: pod["volumes"].append({"name": "k", "secret": {"secretName": "agent-gateway-keys"}}),
     "the agent's pod mounts secrets"),
    (lambda pod, tpl: pod["containers"][0]["securityContext"].update(runAsUser=0), "may run as root"),
    (lambda pod, tpl: pod["volumes"].append({"name": "h", "hostPath": {"path": "/"}}), "a hostPath volume"),
    (lambda pod, tpl: pod.update(automountServiceAccountToken=True), "automountServiceAccountToken is not false"),
    (lambda pod, tpl: tpl["networkPolicy"]["egress"].append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}),
     "egress to {'ipBlock': {'cidr': '0.0.0.0/0'}}: only the proxy and the gateway"),
    (lambda pod, tpl: tpl.pop("networkPolicy"), "no managed network policy"),
    (lambda pod, tpl: pod["containers"][0]["securityContext"]["capabilities"].update(add=["NET_RAW"]),
     "capabilities are not all dropped"),
    (lambda pod, tpl: pod.update(dnsPolicy="ClusterFirst"), "the agent's pod has DNS"),
])
def test_check_names_each_broken_invariant(break_it, said):
    files = kubernetes.render(load("autonomous"))
    template = yaml.safe_load(files["agent-template.yaml"])
    break_it(template["spec"]["podTemplate"]["spec"], template["spec"])
    files["agent-template.yaml"] = yaml.safe_dump(template).encode()
    problems = kubernetes.check(files, "autonomous")
    assert any(said in problem for problem in problems), problems
    assert kubernetes.check(kubernetes.render(load("autonomous")), "autonomous") == []


def test_check_refuses_a_gateway_key_reaching_another_container():
    files = kubernetes.render(load("autonomous"))
    documents = list(yaml.safe_load_all(files["egress-proxy.yaml"]))
    deployment = next(d for d in documents if d and d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
    files["egress-proxy.yaml"] = yaml.safe_dump_all(documents).encode()
    assert any("agent-proxy: container squid: the root file system is writable" in p
               for p in kubernetes.check(files, "autonomous"))


def test_the_committed_tree_is_checked(tmp_path, capsys):
    assert main(["--check"]) == 0
    committed = ROOT / "rendered" / "kubernetes" / "autonomous" / "agent-template.yaml"
    assert committed.read_bytes() == kubernetes.render(load("autonomous"))["agent-template.yaml"]


def test_kubernetes_dir_writes_a_tree_and_keeps_the_keys(tmp_path, capsys):
    target = tmp_path / "deploy"
    assert main(["--kubernetes", str(target), "--profile", "ci"]) == 0
    assert "Put each key in" in capsys.readouterr().out
    assert yaml.safe_load((target / "agent-warm-pool.yaml").read_text())["metadata"]["name"] == "agent-ci"
    (target / "keys").mkdir()
    (target / "keys" / "anthropic").write_text("sk-ant-mine\n")
    assert main(["--kubernetes", str(target), "--profile", "ci"]) == 0
    assert (target / "keys" / "anthropic").read_text() == "sk-ant-mine\n"
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert main(["--kubernetes", str(other)]) == 2
    assert "not empty and not written by render-profiles --kubernetes" in capsys.readouterr().err
    assert main(["--kubernetes", str(tmp_path / "x"), "--profile", "interactive"]) == 2
    assert "not a bypass profile" in capsys.readouterr().err
