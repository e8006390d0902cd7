"""render-profiles: profiles/ -> rendered/ (committed), an image root, or the user's home.

Exit codes, like black and pre-commit: 0 clean or written, 1 drift (--check), 2 bad input or a
refused target. Everything is rendered in memory before anything is written, and every write is
atomic, so bad input never leaves a half-written tree.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from pathlib import Path

from guard import __version__
from renderer import install, invariants, kubernetes, paths
from renderer.model import CLIS, PACKAGE_ROOT, ProfileError, available_profiles, load
from image.layout import MANIFEST
from renderer.outputs import IMAGES, Output, committed_name, manifest, render_profile

BYPASS_DEFAULT = ("autonomous", "ci")


def find_root(explicit: str | None) -> Path:
    """The project root: --root, else the closest folder above the cwd holding profiles/ (this
    project's checkout, or a repository that keeps its own profiles, as the pre-commit hook runs
    it), else the folder this package was installed from."""
    if explicit:
        return Path(explicit).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "profiles" / "profile.schema.json").is_file():
            return folder
    return PACKAGE_ROOT


def render_all(root: Path, names: list[str] | None = None) -> dict[str, dict[str, Output]]:
    return {name: render_profile(load(name, root)) for name in (names or available_profiles(root))}


def committed_tree(rendered: dict[str, dict[str, Output]]) -> dict[str, bytes]:
    return {committed_name(p, out.path, out.image): out.content for p, outs in rendered.items() for out in outs.values()}


def read_tree(folder: Path) -> dict[str, bytes]:
    if not folder.is_dir():
        return {}
    return {str(f.relative_to(folder)): f.read_bytes() for f in sorted(folder.rglob("*")) if f.is_file()}


def unified_diff(expected: dict[str, bytes], actual: dict[str, bytes]) -> list[str]:
    lines: list[str] = []
    for name in sorted(set(expected) | set(actual)):
        want, have = expected.get(name), actual.get(name)
        if want == have:
            continue
        a = (have or b"").decode(errors="replace").splitlines(keepends=True)
        b = (want or b"").decode(errors="replace").splitlines(keepends=True)
        lines += difflib.unified_diff(a, b, f"a/rendered/{name}" if have is not None else "/dev/null",
                                      f"b/rendered/{name}" if want is not None else "/dev/null")
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
    return lines


def kubernetes_tree(root: Path, names: list[str]) -> tuple[dict[str, bytes], list[str]]:
    """rendered/kubernetes/<profile>/...: each bypass profile's Kubernetes deployment, and the
    invariants it breaks."""
    tree, problems = {}, []
    for name in names:
        model = load(name, root)
        if model.bypass:
            files = kubernetes.render(model)
            problems += kubernetes.check(files, name)
            tree.update({f"kubernetes/{name}/{file}": content for file, content in files.items()})
    return tree, problems


def cmd_check(root: Path) -> int:
    rendered = render_all(root)
    problems = invariants.check(rendered, root)
    tree, kube_problems = kubernetes_tree(root, list(rendered))
    problems += kube_problems
    diff = unified_diff({**committed_tree(rendered), **tree}, read_tree(root / "rendered"))
    for problem in problems:
        print(f"render-profiles: invariant broken: {problem}", file=sys.stderr)
    if diff:
        sys.stdout.writelines(diff)
        print("render-profiles: rendered/ is out of date; run `render-profiles` and commit the result", file=sys.stderr)
    if problems or diff:
        return 1
    print(f"render-profiles: {len(rendered)} profiles clean, {sum(map(len, rendered.values()))} files, all invariants hold")
    return 0


def cmd_write(root: Path) -> int:
    rendered = render_all(root)
    problems = invariants.check(rendered, root)
    tree, kube_problems = kubernetes_tree(root, list(rendered))
    problems += kube_problems
    if problems:
        for problem in problems:
            print(f"render-profiles: invariant broken: {problem}", file=sys.stderr)
        return 2
    paths.replace_tree(root / "rendered", {**committed_tree(rendered), **tree})
    print(f"render-profiles: wrote rendered/ ({len(rendered)} profiles)")
    return 0


def cmd_image_root(root: Path, target: str, profiles: list[str], image: str = "agent") -> int:
    for name in profiles:
        if not load(name, root).bypass:
            raise paths.RefusedTarget(f"profile '{name}' is not a bypass profile; an image root holds only bypass profiles ({', '.join(BYPASS_DEFAULT)})")
    destination = paths.check_image_root(Path(target))
    rendered = render_all(root, profiles)
    problems = invariants.check(rendered, root)
    if problems:
        raise ProfileError("; ".join(problems))
    files: dict[str, bytes] = {}
    modes: dict[str, int] = {}
    for name, outputs in rendered.items():
        for out in outputs.values():
            if out.image != image:
                continue
            path = out.path
            if path in files and files[path] != out.content:
                raise ProfileError(
                    f"profiles {', '.join(profiles)} render different contents for {path}; one image can bake only one version of it"
                )
            files[path], modes[path] = out.content, out.mode
    if image == "agent":
        files[MANIFEST] = (json.dumps(manifest(rendered), indent=2) + "\n").encode()
        modes[MANIFEST] = 0o444
    paths.write_image_root(destination, files, modes)
    print(f"render-profiles: wrote {image} image root {destination} ({', '.join(profiles)}; {len(files)} files)")
    return 0


def cmd_kubernetes(root: Path, target: str, profile: str) -> int:
    """Write a profile's Kubernetes deployment into target (new, empty, or one written before:
    its other files, the keys/ folder first of all, stay)."""
    model = load(profile, root)
    files = kubernetes.render(model)
    problems = kubernetes.check(files, profile)
    if problems:
        raise ProfileError("; ".join(problems))
    folder = Path(target)
    ours = folder / "kustomization.yaml"
    if folder.exists() and any(folder.iterdir()) and not (
            ours.is_file() and not ours.is_symlink() and ours.read_bytes().startswith(kubernetes.HEADER.encode())):
        raise paths.RefusedTarget(f"--kubernetes {folder}: not empty and not written by render-profiles --kubernetes; "
                                  f"give a new or empty folder")
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        paths.write_file_atomic(folder / name, content, 0o644)
    vendors = kubernetes.key_vendors(files)
    print(f"render-profiles: wrote {folder} ({profile}; {len(files)} files). Put each key in "
          f"{folder}/keys/<vendor> ({', '.join(vendors)}; mode 0600, never in git), then: kubectl apply -k {folder}")
    return 0


def cmd_show(root: Path, profile: str, cli: str | None) -> int:
    if cli is not None and cli not in CLIS + ("guard",):
        raise ProfileError(f"unknown CLI '{cli}'; known: {', '.join(CLIS + ('guard',))}")
    model = load(profile, root)
    shown: dict[str, list[int]] = {}
    for path, out in render_profile(model).items():
        if cli is None or out.cli == cli:
            sys.stdout.write(f"==> {path} <==\n{out.content.decode()}\n")
            counts = shown.setdefault(out.cli, [0, 0])
            counts[0] += 1
            counts[1] += out.content.count(b"\n")
    summary = ", ".join(f"{name} {files} file{'s' * (files != 1)} ({lines} lines)"
                        for name, (files, lines) in sorted(shown.items()))
    rules = ", ".join(f"{len(model.rules_for(d))} {d}" for d in ("deny", "ask", "allow"))
    sys.stdout.write(f"render-profiles: {profile} ({model.posture}): {len(model.rules)} rules ({rules}; "
                     f"{len(model.tripwire)} tripwire), {len(model.blocked_files)} blocked and "
                     f"{len(model.read_only_files)} read-only file patterns, {len(model.network_allow)} allowed hosts; "
                     f"shown: {summary or 'nothing'}\n")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="render-profiles",
        description="Render profiles/ into each CLI's native files. With no mode: re-render rendered/.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--root", help="project root holding profiles/ and rendered/ (default: found from the cwd)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="re-render in memory, compare with rendered/, check invariants: 0 clean, 1 drift, 2 bad input")
    mode.add_argument("--image-root", metavar="DIR", help="write the tree an image bakes (bypass profiles only) plus its manifest")
    mode.add_argument("--install", metavar="PROFILE", help="merge an interactive profile into the user's files (or, with --system, the CLIs' admin layer)")
    mode.add_argument("--uninstall", action="store_true", help="take the last --install out again: your own settings, exactly")
    mode.add_argument("--show", metavar="PROFILE", help="print a profile's rendered files")
    mode.add_argument("--kubernetes", metavar="DIR", help="write a profile's deployment for kubernetes-sigs/agent-sandbox "
                      "(kubectl apply -k DIR): the agent's SandboxTemplate, warm pool, proxy and gateway")
    p.add_argument("--profile", action="append", help="with --image-root: a profile to bake (repeatable; default autonomous "
                   "and ci); with --kubernetes: the profile (default autonomous)")
    p.add_argument("--image", choices=IMAGES, default="agent", help="with --image-root: which image's tree (default agent; egress-proxy: Squid)")
    p.add_argument("--cli", help="with --show: only this CLI's files (claude, codex, gemini, guard)")
    p.add_argument("--home", help="with --install/--uninstall: the home folder (default $HOME)")
    p.add_argument("--system", action="store_true", help="with --install/--uninstall: the CLIs' admin layer in /etc (root only)")
    p.add_argument("--dry-run", action="store_true", help="with --install/--uninstall: print the diff per file, write nothing")
    p.add_argument("--guard", metavar="PATH", help="with --install: the agent-guard the installed hooks run (default: the one on PATH)")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if (args.system or args.dry_run) and not (args.install or args.uninstall):
        p.error("--system and --dry-run go with --install or --uninstall")
    try:
        root = find_root(args.root)
        if args.check:
            return cmd_check(root)
        if args.image_root:
            return cmd_image_root(root, args.image_root, args.profile or list(BYPASS_DEFAULT), args.image)
        if args.install or args.uninstall:
            home = Path(args.home) if args.home else Path(os.path.expanduser("~"))
            return install.run(root, args.install, home, os.environ, uninstall=args.uninstall,
                               system=args.system, dry_run=args.dry_run, guard=args.guard)
        if args.show:
            return cmd_show(root, args.show, args.cli)
        if args.kubernetes:
            if args.profile and len(args.profile) > 1:
                p.error("--kubernetes takes one --profile")
            return cmd_kubernetes(root, args.kubernetes, (args.profile or ["autonomous"])[0])
        return cmd_write(root)
    except (ProfileError, paths.RefusedTarget, install.InstallError) as exc:
        print(f"render-profiles: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
