"""No import cycles in labctl: every import (at the top of a module or inside a function, where cycles hide) of one
labctl module by another, and no path from a module back to itself."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "labctl"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m in MODULES}


def graph() -> dict[str, set[str]]:
    edges = {}
    for name, path in MODULES.items():
        edges[name] = imported(path) - {name}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for dep in sorted(edges[node]):
            if state.get(dep) == "open":
                found.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return found


def test_the_detector_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_in_labctl() -> None:
    assert cycles(graph()) == []


SIDE_EFFECT_LIBRARIES = {"fabric", "paramiko", "invoke", "subprocess", "docker", "consul", "socket"}
PURE_PLANE_MODULES = {"labctl.planes", "labctl.planes.traits", "labctl.planes.base", "labctl.planes.registry"}
# Scripts labctl sends to the hosts as text and never imports: they run there, and may use what they need.
HOST_SCRIPTS = {"labctl.facts.engine_reader", "labctl.executors.nsprobe"}


def test_host_scripts_are_never_imported_by_labctl() -> None:
    assert set(MODULES) >= HOST_SCRIPTS
    assert [m for m, deps in graph().items() if deps & HOST_SCRIPTS] == []


def pure(name: str) -> bool:
    """The layers that do no side effects: model, facts, plan, and the pure halves of the control planes."""
    if name in HOST_SCRIPTS:
        return False
    if name.startswith(("labctl.model", "labctl.plan.", "labctl.facts")) or name == "labctl.plan":
        return True
    parts = name.split(".")
    if name in PURE_PLANE_MODULES or parts[:2] != ["labctl", "planes"]:
        return name in PURE_PLANE_MODULES
    return (len(parts) == 4 and parts[-1] == "plan") or (len(parts) == 3 and MODULES[name].name == "__init__.py")


def libraries(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def reach(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo += sorted(edges.get(node, ()))
    return seen


def test_model_plan_and_the_planes_pure_halves_reach_no_side_effects() -> None:
    edges = graph()
    checked = [m for m in MODULES if pure(m)]
    assert "labctl.planes.swarm.plan" in checked and "labctl.planes.swarm.executor" not in checked
    assert {"labctl.facts", "labctl.facts.docker", "labctl.plan.status", "labctl.plan.breaks.wrong_subnet"} <= set(
        checked)
    problems = []
    for name in checked:
        for dep in sorted(reach(edges, name)):
            if dep.startswith(("labctl.executors", "labctl.providers")) or dep.endswith(".executor"):
                problems.append(f"{name} reaches {dep}")
            if libraries(MODULES[dep]) & SIDE_EFFECT_LIBRARIES:
                problems.append(f"{name} reaches {dep}, which imports "
                                f"{sorted(libraries(MODULES[dep]) & SIDE_EFFECT_LIBRARIES)}")
    assert problems == []
