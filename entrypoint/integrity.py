"""Config integrity: the baked files the CLIs read are exactly the ones the renderer wrote.

The CLIs fail open on a malformed or missing config (docs/cli-facts.md), so this fails closed: any
file of the selected profile that is missing, changed, not root-owned, writable by the agent or
unparsable refuses the start. Paths in the manifest are absolute image paths; `root` prefixes
them so tests can verify a fixture tree in place.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from hashlib import sha256

from image.layout import MANIFEST, SEED_DIR, runtime_profile

SEED_PREFIX = SEED_DIR + "/"
SUPPORTED_FORMAT = 1


class IntegrityError(Exception):
    """The baked configuration cannot be trusted; each line says what and how to fix it."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Verified:
    manifest: dict
    profile: str
    files: dict  # absolute image path -> manifest entry, only the selected profile's
    contents: dict  # absolute image path -> verified bytes

    def runtime_profile(self) -> dict:
        path = runtime_profile(self.profile)
        runtime = json.loads(self.contents[path])
        environment = runtime.get("environment", {}) if isinstance(runtime, dict) else None
        if not isinstance(runtime, dict) or runtime.get("format") != SUPPORTED_FORMAT \
                or not isinstance(environment, dict) \
                or not isinstance(environment.get("quiet", {}), dict) \
                or not isinstance(environment.get("launcher_only", []), list) \
                or not isinstance(runtime.get("rules", []), list):
            raise IntegrityError([f"{path}: not a format {SUPPORTED_FORMAT} runtime profile (environment.quiet an "
                                  "object, environment.launcher_only and rules lists); rebuild the image"])
        return runtime


def _at(root: str, absolute: str) -> str:
    return os.path.join(root, absolute.lstrip("/"))


def _ownership_problems(label: str, st: os.stat_result, path: str, owner: int) -> list[str]:
    problems = []
    if st.st_uid != owner:
        problems.append(f"{label}: owned by uid {st.st_uid}, manifest says {owner}; rebuild the image")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) or (os.getuid() != 0 and os.access(path, os.W_OK)):
        problems.append(f"{label}: writable by the agent (mode {stat.S_IMODE(st.st_mode):04o}); "
                        "rebuild the image with the file read-only")
    return problems


def _read_checked(path: str, label: str) -> tuple[bytes | None, os.stat_result | None, str | None]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None, None, f"{label}: missing; rebuild the image (render-profiles --image-root)"
    except OSError as error:
        return None, None, f"{label}: cannot open ({error.strerror}); rebuild the image"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, st, f"{label}: not a regular file; rebuild the image"
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks), st, None
    finally:
        os.close(fd)


def _parse_problem(label: str, data: bytes, fmt: str) -> str | None:
    try:
        if fmt == "json":
            json.loads(data)
        elif fmt == "toml":
            import tomllib

            tomllib.loads(data.decode("utf-8"))
        elif fmt != "text":
            return f"{label}: unknown format {fmt!r} in the manifest; rebuild the image"
    except (ValueError, UnicodeDecodeError) as error:
        return f"{label}: does not parse as {fmt} ({error}); rebuild the image"
    return None


def load_manifest(root: str = "/") -> dict:
    path = _at(root, MANIFEST)
    data, st, problem = _read_checked(path, MANIFEST)
    if problem:
        raise IntegrityError([problem])
    problems = _ownership_problems(MANIFEST, st, path, 0)
    folder = os.path.dirname(path)
    try:
        folder_st = os.stat(folder)
        problems += _ownership_problems(os.path.dirname(MANIFEST), folder_st, folder, 0)
    except OSError as error:
        problems.append(f"{os.path.dirname(MANIFEST)}: {error.strerror}")
    try:
        manifest = json.loads(data)
    except ValueError as error:
        raise IntegrityError(problems + [f"{MANIFEST}: not JSON ({error}); rebuild the image"])
    if not isinstance(manifest, dict) or manifest.get("format") != SUPPORTED_FORMAT \
            or not isinstance(manifest.get("files"), dict) or not isinstance(manifest.get("profiles"), list):
        problems.append(f"{MANIFEST}: expected format {SUPPORTED_FORMAT} with 'profiles' and 'files'; "
                        "rebuild the image with this entrypoint's renderer")
    if problems:
        raise IntegrityError(problems)
    return manifest


def verify(profile: str, root: str = "/") -> Verified:
    manifest = load_manifest(root)
    if profile not in manifest["profiles"]:
        raise IntegrityError([f"AGENT_PROFILE={profile}: not baked into this image; "
                              f"choose one of: {', '.join(manifest['profiles'])}"])
    problems = [f"{MANIFEST}: entry {p!r} is not an object; rebuild the image"
                for p, e in manifest["files"].items() if not isinstance(e, dict)]
    # An entry without "profiles" belongs to every profile: never skip a file by omission.
    selected = {p: e for p, e in manifest["files"].items()
                if isinstance(e, dict) and profile in e.get("profiles", manifest["profiles"])}
    runtime = runtime_profile(profile)
    if runtime not in selected:
        problems.append(f"{MANIFEST}: lists no {runtime}; rebuild the image")
    contents = {}
    for image_path, entry in sorted(selected.items()):
        path = _at(root, image_path)
        data, st, problem = _read_checked(path, image_path)
        if problem:
            problems.append(problem)
            continue
        owner = entry.get("owner", 0)
        if owner != 0:
            problems.append(f"{image_path}: manifest owner {owner!r}, baked files must be root-owned (0)")
        problems += _ownership_problems(image_path, st, path, 0)
        if sha256(data).hexdigest() != entry.get("sha256"):
            problems.append(f"{image_path}: sha256 does not match the manifest (changed after the build); "
                            "rebuild the image")
            continue
        parse_problem = _parse_problem(image_path, data, entry.get("format", "text"))
        if parse_problem:
            problems.append(parse_problem)
            continue
        contents[image_path] = data
    if problems:
        raise IntegrityError(problems)
    return Verified(manifest=manifest, profile=profile, files=selected, contents=contents)


def seed_home(verified: Verified, home: str) -> list[str]:
    """Copy the verified seed files into $HOME where absent. Returns the paths written."""
    written = []
    for image_path in sorted(verified.contents):
        if not image_path.startswith(SEED_PREFIX):
            continue
        relative = image_path[len(SEED_PREFIX):]
        target = os.path.join(home, relative)
        if os.path.lexists(target):
            continue
        os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
        # Write aside, then link into place: never a half-written seed, never over a file or
        # link that appeared meanwhile.
        temporary = f"{target}.agent-seed.{os.getpid()}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(verified.contents[image_path])
            try:
                os.link(temporary, target)
            except FileExistsError:
                continue
        finally:
            os.unlink(temporary)
        written.append(target)
    return written
