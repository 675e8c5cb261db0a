"""Imports run one way, down the data flow (README.md, "Layout"): every part of the package
imports only parts of a lower or its own layer, and no module imports itself back through
others. Every import statement counts, at any depth of the code (an import inside a function
dodges nothing)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from tests.conftest import REPO

# The layer order, lowest first: a part may import parts of its own layer or of layers above it
# in this list, never of a later one. `ser` is the package root (its __init__).
LAYERS: list[set[str]] = [
    {"ser", "ser.errors", "ser.atomic", "ser.allocator", "ser.cache_files", "ser.run_layout",
     "ser.set_names", "ser.configs", "ser.config_upgrade", "ser.cli", "ser.cores"},   # plumbing
    {"ser.audio", "ser.features"},                                       # signals and front-ends
    {"ser.data"},                                                        # corpora, blocks, splits
    {"ser.models"},                                                      # networks
    {"ser.inference"},                                                   # predictors, timelines
    {"ser.reporting"},                                                   # tables, pooled statistics
    {"ser.training"},                                                    # the Lightning run
    {"ser.baseline"},                                                    # SVM runs beside it
    {"ser.evaluation", "ser.export"},                                    # finished runs
    {"ser.commands", "ser.predict", "ser.listen", "ser.serve", "ser.figure2", "ser.bench"},
]


def modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the package (``__main__`` files included)."""
    return {".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): p
            for p in (REPO / "ser").rglob("*.py")}


def module_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (``from ser.x import y`` names module
    ``ser.x.y`` when that is a module, else ``ser.x``; relative imports resolved)."""
    known = modules()
    edges: dict[str, set[str]] = defaultdict(set)
    for module, path in known.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                while name and name not in known:
                    name = name.rpartition(".")[0]
                if name and name != module:
                    edges[module].add(name)
    return edges


def part(module: str) -> str:
    """``ser.inference.recordings`` -> ``ser.inference``; ``ser.cli`` stays ``ser.cli``."""
    return ".".join(module.split(".")[:2])


def rank(module: str) -> int:
    if module.endswith(".__main__"):  # ``python -m ser.<part>``: an entry point, a command
        return len(LAYERS) - 1
    for i, layer in enumerate(LAYERS):
        if part(module) in layer:
            return i
    raise AssertionError(f"{module} belongs to no layer: add its part to LAYERS (and the README's Layout)")


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(set(edges) | {m for ms in edges.values() for m in ms}):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def test_every_part_has_a_layer_and_imports_only_its_own_or_lower_layers():
    upward = sorted(f"{a} -> {b}" for a, targets in module_graph().items() for b in targets
                    if rank(b) > rank(a))
    assert upward == []


def test_no_module_imports_itself_back_through_others():
    assert cycles(module_graph()) == []


def test_the_cycle_finder_finds_a_cycle_and_the_layer_check_an_upward_import():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    assert rank("ser.models.module") > rank("ser.features.logmel")
    assert rank("ser.export.__main__") == rank("ser.commands.export") > rank("ser.export.onnx_graph")


def test_inference_uses_neither_evaluation_nor_export_and_models_no_training():
    edges = module_graph()
    reached = lambda start: {part(b) for a, bs in edges.items() if part(a) == start for b in bs}  # noqa: E731
    assert not reached("ser.inference") & {"ser.evaluation", "ser.export", "ser.training"}
    assert not reached("ser.models") & {"ser.training", "ser.evaluation", "ser.inference"}
