"""render_squid: validation of the allowlist and a config Squid itself accepts."""
from __future__ import annotations

import subprocess

import pytest

from egress.squid import BLOCKED_RANGES, normalize_allowlist, render_squid

# A fresh network namespace with only loopback up: nothing Squid might look up can leave.
OFFLINE = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "offline"]


@pytest.mark.parametrize("bad", [
    "", ".", "com", ".com", "*.github.com", "https://github.com", "github.com:443", "github.com/path",
    "user@github.com", "10.0.0.1", "::1", "-bad.example.com", "bad-.example.com", "a..b.com",
    "exa mple.com", "example.123", "x" * 64 + ".com",
])
def test_bad_entries_are_refused_by_name(bad):
    with pytest.raises(ValueError) as error:
        render_squid(["api.anthropic.com", bad], agent_subnets=["10.213.0.0/24"])
    assert repr(bad) in str(error.value)


def test_entries_are_lowercased_deduplicated_and_covered_ones_dropped():
    assert normalize_allowlist(["API.Anthropic.com", "api.anthropic.com", ".github.com", "api.github.com",
                                "github.com", "x.y.github.com", "pypi.org"]) == [
        ".github.com", "api.anthropic.com", "pypi.org"]


def test_non_string_entry_is_refused():
    with pytest.raises(ValueError, match="not a string"):
        render_squid([42], agent_subnets=["10.213.0.0/24"])


@pytest.mark.parametrize("subnets", [[], ["10.213.0.1/24"], ["nonsense"]])
def test_bad_agent_subnets_are_refused(subnets):
    with pytest.raises(ValueError, match="subnet"):
        render_squid(["pypi.org"], agent_subnets=subnets)


def test_ipv4_mapped_range_never_appears():
    # Squid reads ::ffff:0:0/96 as all of IPv4: a dst deny holding it would deny (or, negated, allow) everything.
    conf = render_squid(["pypi.org"], agent_subnets=["10.213.0.0/24"])
    assert not any("::ffff" in line for line in conf.splitlines() if not line.startswith("#"))
    assert all(r in conf for r in BLOCKED_RANGES)


def _ordered_access_rules(conf: str) -> list[str]:
    return [line.split()[-1] for line in conf.splitlines() if line.startswith("http_access")]


def test_allowlist_is_checked_before_any_rule_that_resolves_names():
    rules = _ordered_access_rules(render_squid(["pypi.org"], agent_subnets=["10.213.0.0/24"]))
    assert rules.index("note_deny_not_allowlisted") < rules.index("note_deny_localhost")
    assert rules.index("note_deny_not_allowlisted") < rules.index("note_deny_private_address")
    assert rules[-1] == "note_deny_default"
    assert rules[-2] == "note_allow"


def test_every_access_rule_annotates_its_decision():
    conf = render_squid(["pypi.org"], agent_subnets=["10.213.0.0/24"])
    notes = {line.split()[1] for line in conf.splitlines() if "annotate_transaction" in line}
    access = [line for line in conf.splitlines() if line.startswith("http_access")]
    assert access and all(line.split()[-1] in notes for line in access)


def _squid_parse(tmp_path, conf: str) -> subprocess.CompletedProcess:
    include = tmp_path / "include"
    include.mkdir(exist_ok=True)
    (include / "00-site.conf").write_text("# nothing\n")
    path = tmp_path / "squid.conf"
    path.write_text(conf)
    return subprocess.run([*OFFLINE, "squid", "-k", "parse", "-f", str(path)], capture_output=True, text=True)


@pytest.mark.parametrize("allow", [["api.anthropic.com", ".github.com", "pypi.org"], []])
def test_squid_accepts_the_rendered_config_without_warnings(tmp_path, allow):
    conf = render_squid(allow, agent_subnets=["10.213.0.0/24", "fd00:213::/64"],
                        include_dir=str(tmp_path / "include"))
    done = _squid_parse(tmp_path, conf)
    assert done.returncode == 0, done.stderr
    problems = [l for l in done.stderr.splitlines() if any(w in l for w in ("WARNING", "ERROR", "FATAL"))]
    assert problems == []


def test_an_empty_allowlist_denies_everything():
    rules = [l for l in render_squid([], agent_subnets=["10.213.0.0/24"]).splitlines() if l.startswith("http_access")]
    assert not any(l.startswith("http_access allow") for l in rules)


def test_image_files_parse_as_laid_out(tmp_path):
    from egress.squid import AGENT_SUPERNET, squid_image_files
    files = squid_image_files(["api.anthropic.com", ".github.com"])
    assert set(files) == {"etc/squid/squid.conf", "etc/squid/agent-sandbox.d/00-site.conf"}
    conf = files["etc/squid/squid.conf"].decode()
    assert f"acl agents src {AGENT_SUPERNET}" in conf
    include = tmp_path / "include"
    include.mkdir()
    (include / "00-site.conf").write_bytes(files["etc/squid/agent-sandbox.d/00-site.conf"])
    (tmp_path / "squid.conf").write_text(conf.replace("/etc/squid/agent-sandbox.d", str(include)))
    done = subprocess.run([*OFFLINE, "squid", "-k", "parse", "-f", str(tmp_path / "squid.conf")], capture_output=True, text=True)
    assert done.returncode == 0 and "WARNING" not in done.stderr, done.stderr
