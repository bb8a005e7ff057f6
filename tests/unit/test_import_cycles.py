"""No import cycle inside the minirt package, counting imports inside functions too.

A deferred import (inside a function) hides a cycle from the interpreter at start-up but not
from the design: the two modules still need each other. So every Import and ImportFrom node of
every minirt/**/*.py counts, wherever it sits in the file.

Edges of the module graph:
- `import minirt.a.b` is an edge to minirt.a.b;
- `from minirt.a import b` is an edge to minirt.a.b when b is a module, else to minirt.a;
- relative imports are resolved against the importing module's package;
- the implicit import of a parent package (`import minirt.a.b` runs minirt/a/__init__.py) is
  not an edge: every module would otherwise sit in a cycle with its package's __init__.

Cycles are the strongly connected components of that graph with more than one module (or a
module importing itself), found with Tarjan's algorithm; each is reported with one concrete
import chain through it.
"""

import ast
import os
from collections import deque

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE = "minirt"


def module_files(repo: str, package: str) -> dict[str, str]:
    """{dotted module name: path} for every .py file of the package."""
    out = {}
    top = os.path.join(repo, package)
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, name), repo)[: -len(".py")]
            parts = rel.split(os.sep)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = os.path.join(dirpath, name)
    return out


def _resolve_relative(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name `from <level dots><target>` refers to inside `module`."""
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def imports_of(module: str, is_package: bool, source: str, modules: set[str]) -> set[str]:
    """The package modules `source` imports (pure: `modules` is the set of known names)."""

    def known(name: str) -> str | None:
        # `import minirt.a.b` where b is not a module (cannot happen for plain import, but a
        # from-import's target may be a name): the longest prefix that is a module
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    if target := known(alias.name):
                        out.add(target)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _resolve_relative(module, is_package, node.level, node.module)
            else:
                base = node.module or ""
            if base != PACKAGE and not base.startswith(PACKAGE + "."):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if alias.name != "*" and sub in modules:
                    out.add(sub)  # `from pkg import submodule`: the submodule
                elif target := known(base):
                    out.add(target)
    return out


def build_graph(repo: str = REPO, package: str = PACKAGE) -> dict[str, set[str]]:
    files = module_files(repo, package)
    names = set(files)
    graph = {}
    for name, path in files.items():
        with open(path, encoding="utf-8") as f:
            source = f.read()
        graph[name] = imports_of(name, path.endswith("__init__.py"), source, names)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (no recursion limit); components in discovery order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    out.append(sorted(component))
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The components that are cycles: more than one module, or one that imports itself."""
    return [c for c in strongly_connected(graph) if len(c) > 1 or c[0] in graph.get(c[0], ())]


def example_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One import chain a -> ... -> a inside the component (shortest from its first member)."""
    members = set(component)
    start = component[0]
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph[node] & members):
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if child not in parent:
                parent[child] = node
                queue.append(child)
    raise AssertionError(f"no cycle through {component}")


def test_no_import_cycles_in_minirt():
    graph = build_graph()
    assert "minirt.cli" in graph and "minirt.net.firewall" in graph, sorted(graph)  # the walk found the package
    assert sum(len(v) for v in graph.values()) > 50  # and its imports, deferred ones included
    found = cycles(graph)
    report = [" -> ".join(example_cycle(graph, c)) + f"   (component: {', '.join(c)})" for c in found]
    assert not found, "import cycles in minirt:\n  " + "\n  ".join(report)


# ---- the finder itself, on graphs small enough to check by eye ------------------------------


def test_finder_on_a_synthetic_graph():
    graph = {
        "a": {"b"},
        "b": {"c"},
        "c": {"a", "d"},  # a -> b -> c -> a
        "d": {"e"},
        "e": {"d"},  # d <-> e, reached from the first cycle
        "f": {"f"},  # a module importing itself
        "g": {"a", "h"},  # no cycle through g or h
        "h": set(),
    }
    assert sorted(cycles(graph)) == [["a", "b", "c"], ["d", "e"], ["f"]]
    assert example_cycle(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]
    assert example_cycle(graph, ["d", "e"]) == ["d", "e", "d"]
    assert example_cycle(graph, ["f"]) == ["f", "f"]
    assert cycles({"x": {"y"}, "y": set()}) == []
    # a long chain does not hit the recursion limit
    chain = {str(i): {str(i + 1)} for i in range(5000)} | {"5000": {"0"}}
    assert [len(c) for c in cycles(chain)] == [5001]


def test_edges_deferred_relative_and_submodule_imports():
    modules = {"minirt", "minirt.a", "minirt.net", "minirt.net.b", "minirt.net.c", "minirt.net.firewall",
               "minirt.net.firewall.d"}  # fmt: skip
    source = """
import os
import minirt.a
from minirt.net import b
from minirt.net import SOME_NAME
from . import c
from .firewall import d
from .. import a as again

def later():
    from minirt.net.firewall import get_backend
"""
    got = imports_of("minirt.net.x", False, source, modules)
    assert got == {"minirt.a", "minirt.net.b", "minirt.net", "minirt.net.c", "minirt.net.firewall.d",
                   "minirt.net.firewall"}  # fmt: skip
    # inside a package's __init__, `from . import d` is the package's own submodule
    assert imports_of("minirt.net.firewall", True, "from . import d\n", modules) == {"minirt.net.firewall.d"}
    # a parent package is not an edge unless imported by name
    assert imports_of("minirt.net.b", False, "import minirt.net.c\n", modules) == {"minirt.net.c"}
