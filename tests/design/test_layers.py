"""The import graph keeps the layers of docs/design.md: the standard-library runtime at the bottom
(image/layout.py, guard, entrypoint), the image tools and the egress configs above it, the renderer
above those, the launcher on top. Every import runs downward, no modules import each other in a
circle, and nothing in the product imports the tests. (demo/ and benchmarks/ stand above it all:
they drive the product and the conformance harness in tests/conformance.)"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("image", "guard", "entrypoint", "egress", "renderer", "launcher")
# unit -> floor; a module may import only from a lower floor, or from its own unit
FLOORS = {"image.layout": 0, "guard": 1, "entrypoint": 2, "image": 3, "egress": 3, "renderer": 4, "launcher": 5}
RUNTIME = ("image.layout", "guard", "entrypoint")  # run in the image: the standard library only
# Circles that exist and have an owner to open them; each must still exist (a stale entry fails),
# and any other circle fails. Like profiles/corpus/regex_known_gaps.yaml, a list with reasons.
KNOWN_CIRCLES = {
    ("egress.gateway_github", "egress.gateway_server"):
        "the GitHub routes and the gateway server import each other (gateway helper, GitHub wall)",
}

# Upward imports that exist on purpose, function-local, with the reason; each must still exist.
KNOWN_UPWARD = {
    "guard.policy -> egress.github_policy":
        "the endpoint matcher judges a `gh api graphql` document by the credential gateway's own parser and "
        "allowlist (graphql-core), imported only for such calls, rather than keep a second allowlist "
        "(issue 13: reuse, don't duplicate)",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in (REPO / package).rglob("*.py")}


def unit(module: str) -> str:
    return "image.layout" if module == "image.layout" else module.split(".")[0]


def imports(path: Path, module: str, known: dict) -> tuple[set[str], set[str]]:
    """(project modules, other top-level modules) that `module` imports anywhere in its code."""
    project, other = set(), set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in PACKAGES or top == "tests":
                while name not in known and "." in name:
                    name = name.rpartition(".")[0]
                project.add(name)
            elif top != "__future__":
                other.add(top)
    return project - {module}, other


def graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    known = project_modules()
    edges, others = {}, {}
    for module, path in known.items():
        edges[module], others[module] = imports(path, module, known)
    return edges, others


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def upward(edges: dict[str, set[str]]) -> list[str]:
    return sorted(f"{source} -> {target}" for source, targets in edges.items() for target in targets
                  if unit(source) != unit(target) and FLOORS[unit(target)] >= FLOORS[unit(source)])


def test_every_import_runs_downward():
    edges, _ = graph()
    found = upward(edges)
    assert sorted(set(found) - set(KNOWN_UPWARD)) == [], "a new upward import"
    assert sorted(set(KNOWN_UPWARD) - set(found)) == [], "a known upward import is gone: remove it from KNOWN_UPWARD"


def test_no_import_circle_but_the_known_ones():
    edges, _ = graph()
    found = {tuple(circle) for circle in circles(edges)}
    assert sorted(found - set(KNOWN_CIRCLES)) == [], "a new import circle"
    assert sorted(set(KNOWN_CIRCLES) - found) == [], "a known circle is gone: remove it from KNOWN_CIRCLES"


def test_the_product_never_imports_the_tests():
    edges, _ = graph()
    assert sorted(f"{s} -> {t}" for s, targets in edges.items() for t in targets if t.split(".")[0] == "tests") == []


def test_the_runtime_imports_only_the_standard_library():
    _, others = graph()
    foreign = {module: sorted(names - set(sys.stdlib_module_names))
               for module, names in others.items() if unit(module) in RUNTIME}
    assert {module: names for module, names in foreign.items() if names} == {}


def test_the_checks_catch_what_they_exist_for():
    assert upward({"guard.cli": {"renderer.model"}, "renderer.model": {"guard.policy"}}) == ["guard.cli -> renderer.model"]
    assert upward({"image.layout": {"image.verify"}}) == ["image.layout -> image.verify"]
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []
