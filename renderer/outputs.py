"""Every file a profile renders to, serialized: {target path: Output}.

Target paths are absolute image paths (/etc/..., /home/agent/...) for bypass profiles and
home-relative (~/...) for the interactive profile. Pure: nothing here touches the disk.
"""

from __future__ import annotations

import hashlib
import json
from guard import __version__
from dataclasses import dataclass

import tomli_w

from egress.gateway import proxy_allowlist
from egress.squid import squid_image_files
from guard.policy import compile_policy
from guard.runtime import HOME_PROFILES_DIR
from image.layout import HOME, SHIMS_DIR, SHIMS_PROFILE_D, runtime_profile
from renderer import claude, codex, gemini, runtime
from renderer.model import PolicyModel, ProfileError
from renderer.shims import render_shim
from renderer.templating import render_template

GENERATOR = f"render-profiles {__version__}"


IMAGES = ("agent", "egress-proxy")


@dataclass(frozen=True)
class Output:
    path: str
    content: bytes
    format: str  # json | toml | text
    mode: int
    cli: str  # claude | codex | gemini | guard | squid
    image: str = "agent"  # which image bakes it: agent | egress-proxy

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def to_json(document: object) -> bytes:
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()


TOML_HEADER = "# Rendered by render-profiles from profiles/. Do not edit: edit the profile and re-render.\n"


def to_toml(document: dict) -> bytes:
    return (TOML_HEADER + tomli_w.dumps(document)).encode()


def _serialize(path: str, document: object) -> tuple[bytes, str]:
    if isinstance(document, str):
        return document.encode(), "text"
    if path.endswith(".toml"):
        return to_toml(document), "toml"
    return to_json(document), "json"


def render_profile(model: PolicyModel) -> dict[str, Output]:
    documents: list[tuple[str, str, object]] = []
    for cli, module in (("claude", claude), ("codex", codex), ("gemini", gemini)):
        documents += [(cli, path, doc) for path, doc in module.render(model).items()]

    runtime_doc = runtime.runtime_profile(model)
    runtime_path = runtime_profile(model.name) if model.bypass else f"{HOME_PROFILES_DIR}/{model.name}.json"
    documents.append(("guard", runtime_path, runtime_doc))
    if not model.bypass:  # the admin layer's copy, which the guard reads first (--install --system)
        documents.append(("guard", runtime_profile(model.name), runtime_doc))
    if model.bypass:
        policy = compile_policy(runtime_doc)
        for program in runtime_doc["guarded_programs"]:
            documents.append(("guard", f"{SHIMS_DIR}/{program}", render_shim(program, policy)))
        documents.append(("guard", SHIMS_PROFILE_D, render_template("profile-shims.sh.j2", shim_dir=SHIMS_DIR)))

    outputs: dict[str, Output] = {}
    for cli, path, document in documents:
        content, fmt = _serialize(path, document)
        mode = 0o555 if path.startswith(SHIMS_DIR) else 0o444 if model.bypass else 0o644
        outputs[path] = Output(path=path, content=content, format=fmt, mode=mode, cli=cli)
    if model.bypass:
        for path, content in egress_proxy_files(model).items():
            outputs[f"egress-proxy:{path}"] = Output(path=path, content=content, format="text", mode=0o444, cli="squid", image="egress-proxy")
    return dict(sorted(outputs.items()))


def egress_proxy_files(model: PolicyModel) -> dict[str, bytes]:
    """Squid, rendered from the allowlist, for the proxy image. The API hosts the credential
    gateway serves are left out: reached directly they would take a key of the agent's choosing."""
    allow = list(model.network_allow)
    try:
        files = squid_image_files(proxy_allowlist(allow))
    except ValueError as exc:
        raise ProfileError(f"profile '{model.name}': network.allow cannot be rendered for squid: {exc}") from None
    return {"/" + path: content for path, content in files.items()}


def committed_name(profile: str, path: str, image: str = "agent") -> str:
    """Where a rendered file is committed: rendered/<profile>/..., every dot-folder or dot-file
    written with chezmoi's dot_ prefix so that no CLI ever reads a committed file. Files of
    another image than the agent's go under rendered/<profile>/<image>/."""
    if path.startswith("~/"):
        parts = ["user-home", *path[2:].split("/")]
    else:
        parts = path.lstrip("/").split("/")
    parts = [f"dot_{p[1:]}" if p.startswith(".") else p for p in parts]
    return "/".join([profile, *([image] if image != "agent" else []), *parts])


def manifest(per_profile: dict[str, dict[str, Output]]) -> dict:
    files: dict[str, dict] = {}
    for profile, outputs in per_profile.items():
        for path, out in outputs.items():
            if out.image != "agent":
                continue
            entry = files.setdefault(path, {
                "sha256": out.sha256,
                "mode": f"{out.mode:04o}",
                "owner": 0,
                "format": out.format,
                "cli": out.cli,
                "profiles": [],
            })
            entry["profiles"].append(profile)
    return {
        "format": 1,
        "generator": GENERATOR,
        "profiles": list(per_profile),
        "writable_dirs": [f"{HOME}/.claude", f"{HOME}/.codex", f"{HOME}/.gemini"],
        "files": dict(sorted(files.items())),
    }
