"""The shape of the package, read with ``ast`` (issue 27): every package's lazy export map and its
``TYPE_CHECKING`` imports name the same things, and every lazily exported name imports; no import cycle
among hf_synth's modules, not even one hidden by an import inside a function; no module over
:data:`MAX_LINES` lines.

The import graph holds the imports a module runs when it is imported: those at module level and in class
bodies (inside ``if``/``try``/``with`` blocks too), not those inside functions or under ``if TYPE_CHECKING:``.
``from PACKAGE import NAME`` where NAME is in PACKAGE's lazy export map counts as an import of the
submodule that defines NAME (the package's ``__getattr__`` imports it right then).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "hf_synth"
MAX_LINES = 500


def _module_name(path: Path) -> str:
    parts = ["hf_synth", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def lazy_map(tree: ast.Module) -> dict[str, list[str]] | None:
    """The ``{submodule: [names]}`` a package passes to ``attach``; None for a module that does not."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "attach" and len(node.args) == 2:
            return ast.literal_eval(node.args[1])
    return None


def type_checking_imports(tree: ast.Module) -> set[tuple[str, str]]:
    """``(submodule, name)`` for each ``from .submodule import name`` under ``if TYPE_CHECKING:``."""
    found = set()
    for node in tree.body:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom) and statement.level == 1, ast.unparse(statement)
                found |= {(statement.module, alias.name) for alias in statement.names}
    return found


PACKAGES = {}
for _name, _path in MODULES.items():
    if _path.name == "__init__.py":
        _map = lazy_map(ast.parse(_path.read_text(encoding="utf-8")))
        if _map is not None:
            PACKAGES[_name] = _map


def test_the_top_level_package_and_its_subpackages_use_the_lazy_export_map():
    assert "hf_synth" in PACKAGES and len(PACKAGES) > 5, sorted(PACKAGES)


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_the_lazy_export_map_and_the_type_checking_imports_list_the_same_names(package):
    tree = ast.parse(MODULES[package].read_text(encoding="utf-8"))
    lazy = {(module, name) for module, names in PACKAGES[package].items() for name in names}
    static = type_checking_imports(tree)
    assert lazy - static == set(), f"{package}: exported lazily but not imported under TYPE_CHECKING"
    assert static - lazy == set(), f"{package}: imported under TYPE_CHECKING but not exported lazily"
    names = [name for _, name in sorted(lazy)]
    assert len(names) == len(set(names)), f"{package}: a name is exported from two submodules"


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_every_lazily_exported_name_imports(package):
    module = importlib.import_module(package)
    for submodule, names in PACKAGES[package].items():
        owner = importlib.import_module(f"{package}.{submodule}")
        for name in names:
            assert hasattr(owner, name), f"{package}.{submodule} defines no {name!r}"
            assert getattr(module, name) is getattr(owner, name), f"{package}.{name}"
    assert sorted(module.__all__) == sorted(n for names in PACKAGES[package].values() for n in names)


def _imports(body: list[ast.stmt], deferred: bool):
    """The import statements run when a module is imported (see the module docstring); with ``deferred``,
    those inside functions too (run when the function is first called)."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not deferred:
            continue
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _imports(node.orelse, deferred)
        else:  # function and class bodies, the blocks of if / try / with / for / while / match
            for field in ("body", "orelse", "finalbody"):
                yield from _imports(getattr(node, field, []), deferred)
            for block in (*getattr(node, "handlers", []), *getattr(node, "cases", [])):
                yield from _imports(block.body, deferred)


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    base = package.split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph(deferred: bool = False) -> dict[str, set[str]]:
    """Module -> the hf_synth modules it imports when it is imported (with ``deferred``: or later, from
    inside a function)."""
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        edges: set[str] = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8")).body, deferred):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                target = _resolve(module, node)
                targets = [target]
                for alias in node.names:
                    if f"{target}.{alias.name}" in MODULES:  # from package import submodule
                        targets.append(f"{target}.{alias.name}")
                    owner = next(
                        (m for m, names in PACKAGES.get(target, {}).items() if alias.name in names), None
                    )
                    if owner is not None:  # a lazily exported name: its submodule is imported right then
                        targets.append(f"{target}.{owner}")
            edges |= {t for t in targets if t in MODULES and t != module}
        graph[module] = edges
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each as one cycle through it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_through(graph, set(c)) for c in components]


def _cycle_through(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """One cycle inside ``component``, from its first module back to it (breadth-first, shortest)."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for successor in sorted(graph[node] & component):
                if successor == start:
                    return paths[node] + [start]
                if successor not in paths:
                    paths[successor] = paths[node] + [successor]
                    following.append(successor)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a strongly connected component always has one


def test_the_import_graph_sees_lazy_and_relative_imports():
    graph = import_graph()
    assert "hf_synth.rows" in graph["hf_synth.self_instruct.steps"]  # from ..rows import ...
    assert "hf_synth.engine.protocol" in graph["hf_synth.filters.judge"]  # from ..engine import Engine (lazy)
    assert "hf_synth._lazy" in graph["hf_synth"]
    assert "hf_synth.self_instruct.pipeline" not in graph["hf_synth"]  # only under TYPE_CHECKING
    # rouge.py imports its compiled kernels inside functions (numba loads on first use): a dependency,
    # not an import-time edge
    assert "hf_synth.filters.rouge_fast" not in graph["hf_synth.filters.rouge"]
    assert "hf_synth.filters.rouge_fast" in import_graph(deferred=True)["hf_synth.filters.rouge"]
    assert "hf_synth.self_instruct.pipeline" not in import_graph(deferred=True)["hf_synth"]


def test_cycle_detection_names_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_cycles(graph) == [["a", "b", "c", "a"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_hf_synth_modules():
    cycles = import_cycles(import_graph())
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_two_modules_depend_on_each_other_even_through_imports_inside_functions():
    """A cycle hidden by an import inside a function still ties two modules together (neither can change or
    move without the other); the lower one should own what both need."""
    cycles = import_cycles(import_graph(deferred=True))
    assert not cycles, "dependency cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_module_imports_another_modules_private_name():
    """A leading underscore keeps a name to its module; what two modules share is public, in the module that
    owns it (``filters.dataset_filters._texts``, imported by coverage and five filters, became
    ``hf_synth.rows.column_texts``)."""
    found = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (
                node.level or (node.module or "").startswith("hf_synth")
            ):
                private = [
                    a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")
                ]
                if private:
                    found.append(
                        f"{module}:{node.lineno} imports {', '.join(private)} from {_resolve(module, node)}"
                    )
    assert not found, "\n".join(found)


def test_no_module_is_over_max_lines():
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in MODULES.items()}
    over = {name: n for name, n in sorted(sizes.items()) if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines (split them by job): {over}"
