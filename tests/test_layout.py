"""Imports run one way, down the data flow (README.md, "Layout"): no two parts of the package
import each other, directly or through others, counting imports inside functions too."""

from __future__ import annotations

import ast
from collections import defaultdict

from tests.conftest import REPO


def part(module: str) -> str:
    """``ser.inference.recordings`` -> ``ser.inference``; ``ser.cli`` stays ``ser.cli``."""
    return ".".join(module.split(".")[:2])


def import_graph() -> dict[str, set[str]]:
    """Part -> the parts it imports (every import statement, at any depth of the code)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for path in (REPO / "ser").rglob("*.py"):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                if name.startswith("ser.") and part(name) != part(module):
                    edges[part(module)].add(part(name))
    return edges


def reaches(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_two_parts_of_the_package_import_each_other():
    edges = import_graph()
    cycles = sorted((a, b) for a in edges for b in edges[a] if a in reaches(edges, b))
    assert cycles == []


def test_inference_uses_neither_evaluation_nor_export_and_models_no_training():
    edges = import_graph()
    assert not reaches(edges, "ser.inference") & {"ser.evaluation", "ser.export", "ser.training"}
    assert not reaches(edges, "ser.models") & {"ser.training", "ser.evaluation", "ser.inference"}
