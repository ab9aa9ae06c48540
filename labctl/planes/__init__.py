"""The overlay's control planes as plug-ins: one package per plane, behind this registry, the only list of plane
names.

A plane's package holds three parts:
- `__init__.py`: `TRAITS` (labctl.planes.traits), plain data the validator and the pipeline read;
- `plan.py`: `PLANE`, its pure half (labctl.planes.base.PlanePlan): facts and their parser, whether an engine can
  carry it (`auto`), the playbook as it runs it, status rows and the status line;
- `executor.py`: `Plane`, its side-effect half (labctl.planes.executor_base.ControlPlane): the hooks `up` and
  `down` call.

A new plane is one package plus one line in PLANES. This module gives the names and traits only, so that the
validator (model.playbook) can read them without importing plan or executor code; labctl.planes.registry gives the
pure halves, labctl.planes.executor_base.executor_halves the executor halves, each imported on first use.
"""

from __future__ import annotations

import importlib

from labctl.planes.traits import Traits

# plane name -> its package
PLANES: dict[str, str] = {
    "kvstore": "labctl.planes.kvstore",
    "swarm": "labctl.planes.swarm",
    "vxlan": "labctl.planes.vxlan",
}


def names() -> tuple[str, ...]:
    return tuple(PLANES)


def traits(name: str) -> Traits:
    found: Traits = importlib.import_module(PLANES[name]).TRAITS
    return found
