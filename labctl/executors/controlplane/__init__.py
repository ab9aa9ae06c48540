"""The overlay's control plane as one interface with three implementations side by side: the cluster store
(kvstore), swarm mode (swarm) and labctl's own Linux VXLAN devices (vxlan).

`up` and `down` are a fixed pipeline of common steps (preflight, images, daemon.json, drift, networks, containers);
between them they call the same hooks on every plane, each with `active` telling whether it is the plane this run
uses. An active plane does its work; an inactive one only finds and refuses or removes what this lab left of it
(a lab switched from one plane to another, a killed run). Which plane is active is plan.controlplane's decision.
"""

from __future__ import annotations

from labctl.executors.controlplane.base import ControlPlane, Run
from labctl.executors.controlplane.kvstore import KvStore
from labctl.executors.controlplane.swarm import Swarm
from labctl.executors.controlplane.vxlan import Vxlan

__all__ = ["ControlPlane", "Run", "planes"]


def planes() -> dict[str, ControlPlane]:
    """One fresh instance of each plane per run (they keep the facts they gathered)."""
    return {"kvstore": KvStore(), "swarm": Swarm(), "vxlan": Vxlan()}
