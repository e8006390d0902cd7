"""The Squid configuration render-profiles commits for the proxy image, judged by squid itself."""

import re
import subprocess

import pytest

from render_helpers import REPO
from renderer.model import load

PROXY = REPO / "rendered" / "autonomous" / "egress-proxy" / "etc" / "squid"


def squid_parse(tmp_path, conf_text):
    (tmp_path / "squid.conf").write_text(conf_text)
    (tmp_path / "upper").mkdir(); (tmp_path / "work").mkdir()
    script = (
        "ip link set lo up && "
        f"mount -t overlay overlay -o lowerdir=/etc,upperdir={tmp_path}/upper,workdir={tmp_path}/work /etc && "
        f"mkdir -p /etc/squid/agent-sandbox.d && cp {PROXY}/agent-sandbox.d/00-site.conf /etc/squid/agent-sandbox.d/ && "
        f"exec squid -k parse -f {tmp_path}/squid.conf"
    )
    return subprocess.run(["unshare", "--mount", "--net", "sh", "-c", script], capture_output=True, text=True, timeout=60)


def test_squid_accepts_the_rendered_config(tmp_path):
    result = squid_parse(tmp_path, (PROXY / "squid.conf").read_text())
    assert result.returncode == 0, result.stderr[-2000:]
    assert not re.search(r"(?i)\bWARNING\b|ERROR|FATAL", result.stderr), result.stderr[-2000:]


def test_squid_parse_can_fail(tmp_path):
    result = squid_parse(tmp_path, (PROXY / "squid.conf").read_text() + "\nhttp_access allow nosuchacl\n")
    assert result.returncode != 0 or "FATAL" in result.stderr or "ERROR" in result.stderr


@pytest.mark.parametrize("domain", [d for d in load("autonomous").network_allow
                                    if d not in ("api.anthropic.com", "api.openai.com", "generativelanguage.googleapis.com")])
def test_every_allowlisted_domain_reaches_the_proxy(domain):
    assert re.search(rf"(?m)^\s*{re.escape(domain)}\s*$|\s{re.escape(domain)}(\s|$)", (PROXY / "squid.conf").read_text()), domain


def test_gateway_served_api_hosts_are_not_reachable_directly():
    conf = (PROXY / "squid.conf").read_text()
    denied = next(line for line in conf.splitlines() if line.startswith("acl model_api dstdomain")).split()
    for host in ("api.anthropic.com", "api.openai.com", "generativelanguage.googleapis.com"):
        assert f"acl allowlisted dstdomain -n {host}" not in conf
        assert host in denied
    assert "http_access deny model_api note_deny_model_api" in conf
