"""The stub plane's executor half: no hooks of its own (the base class's are no-ops)."""

from __future__ import annotations

from labctl.planes.executor_base import ControlPlane


class Stub(ControlPlane):
    name = "stub"


Plane = Stub
