"""The package's import graph: imports point down the layers, never up, and never in a cycle.

Every import counts, including those inside functions (lazy imports of optional
dependencies): a lazy import from a higher layer is still an upward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import robo_reward

PACKAGE = Path(robo_reward.__file__).parent

#: Lowest first. A module may import modules of its own layer or below (its own
#: layer only without a cycle). The first matching prefix decides a module's layer.
LAYERS: list[tuple[str, ...]] = [
    ("robo_reward.errors", "robo_reward.atomic"),
    ("robo_reward.types", "robo_reward.assets", "robo_reward.geometry", "robo_reward.keypoint_spec"),
    ("robo_reward.fusion", "robo_reward.metrics", "robo_reward.shaping", "robo_reward.sync",
     "robo_reward.interfaces"),
    ("robo_reward.models",),
    ("robo_reward.scoring",),
    ("robo_reward.labels", "robo_reward.evaluation"),
    ("robo_reward.data",),
    ("robo_reward.engine", "robo_reward.stream", "robo_reward.envs"),
    ("robo_reward.labeling", "robo_reward.rl", "robo_reward.ros2"),
    ("robo_reward.commands", "robo_reward.cli"),
]


def module_name(path: Path) -> str:
    parts = ("robo_reward", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int | None:
    for rank, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    return None


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("robo_reward")}


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges = {}
    for name, path in modules.items():
        edges[name] = {target for target in imports_of(path) if target in modules and target != name}
    return edges


def test_every_module_has_a_layer():
    assert [m for m in graph() if m != "robo_reward" and layer_of(m) is None] == []
    assert layer_of("robo_reward.models.progress") == 3 and layer_of("robo_reward.cli") == len(LAYERS) - 1


def test_no_import_points_up_a_layer():
    upward = [
        f"{source} (layer {layer_of(source)}) imports {target} (layer {layer_of(target)})"
        for source, targets in graph().items() if source != "robo_reward"
        for target in targets if target != "robo_reward" and layer_of(target) > layer_of(source)
    ]
    assert upward == []


def test_the_import_graph_has_no_cycle():
    edges = {source: {t for t in targets if t != "robo_reward"} for source, targets in graph().items()}
    # a package's __init__ re-exporting its own modules is not a cycle through the package
    edges = {s: {t for t in ts if not s.startswith(t + ".")} for s, ts in edges.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, [*stack, target])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert cycles == []
