"""The overlay's control plane as one interface with three implementations side by side: the cluster store
(kvstore), swarm mode (swarm) and labctl's own Linux VXLAN devices (vxlan).

`up` and `down` are a fixed pipeline of common steps (preflight, images, daemon.json, drift, networks, containers);
between them they call the same hooks on every plane, each with `active` telling whether it is the plane this run
uses. An active plane does its work; an inactive one only finds and refuses or removes what this lab left of it
(a lab switched from one plane to another, a killed run). Which plane is active is plan.controlplane's decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from labctl.executors.remote import Hosts
from labctl.executors.services import ServiceManager
from labctl.executors.steps import Report
from labctl.model.inventory import Inventory
from labctl.model.playbook import Playbook
from labctl.plan.preflight import HostFacts
from labctl.ui import Progress


@dataclass
class Run:
    """What the hooks of a run work with. pb is the playbook as the active plane runs it (plan.controlplane.effective);
    facts and addresses are empty in `down` (which gathers what it needs itself)."""

    inv: Inventory
    pb: Playbook
    hosts: Hosts
    names: list[str]                      # the docker hosts this run touches
    manager: ServiceManager
    progress: Progress
    report: Report
    facts: dict[str, HostFacts] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)   # docker host -> underlay address


class ControlPlane:
    """No-op hooks; each plane overrides the ones it needs."""

    name = ""

    def preflight(self, run: Run, active: bool) -> list[str]:
        """Refusals (exit 2, nothing changed yet)."""
        return []

    def bootstrap(self, run: Run, active: bool) -> None:
        """Before daemon.json is configured (kvstore: the store runs and every docker host reaches it)."""

    def join(self, run: Run, active: bool) -> None:
        """After daemon.json (swarm: init and join)."""

    def before_networks(self, run: Run, active: bool) -> None:
        """After drift removal, before the lab's networks (vxlan: the devices Docker's networks sit on)."""

    def after_networks(self, run: Run, active: bool) -> None:
        """Networks exist; containers come next (kvstore: overlays visible everywhere)."""

    def down_begin(self, run: Run) -> None:
        """`down`, before anything is removed (kvstore: a stopped store with data is started for the teardown)."""

    def teardown(self, run: Run) -> None:
        """`down`, after the lab's containers and networks are gone (swarm leave, vxlan devices)."""

    def down_end(self, run: Run) -> None:
        """`down`, after daemon.json is restored (kvstore: keys wiped, store stopped, its data removed)."""


def planes() -> dict[str, ControlPlane]:
    """One fresh instance of each plane per run (they keep the facts they gathered)."""
    from labctl.executors.controlplane.kvstore import KvStore
    from labctl.executors.controlplane.swarm import Swarm
    from labctl.executors.controlplane.vxlan import Vxlan

    return {"kvstore": KvStore(), "swarm": Swarm(), "vxlan": Vxlan()}
