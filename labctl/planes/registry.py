"""The planes' pure halves, found through labctl.planes.PLANES (imported on first use)."""

from __future__ import annotations

import importlib

from labctl.planes import PLANES, traits
from labctl.planes.base import PlanePlan


def plan_half(name: str) -> PlanePlan:
    found: PlanePlan = importlib.import_module(f"{PLANES[name]}.plan").PLANE
    return found


def plan_halves() -> dict[str, PlanePlan]:
    return {n: plan_half(n) for n in PLANES}


def auto_order() -> list[str]:
    """The planes `auto` may take, in the order it tries them."""
    ranked = [(t.auto, n) for n in PLANES if (t := traits(n)).auto is not None]
    return [n for _, n in sorted(ranked)]
