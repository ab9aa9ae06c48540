"""The interface every control plane implements: the hooks `up` and `down` call, and what they work with."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from labctl.executors.remote import Hosts
from labctl.executors.services import ServiceManager
from labctl.executors.steps import Report
from labctl.model.inventory import Inventory
from labctl.model.playbook import Playbook
from labctl.plan.preflight import HostFacts
from labctl.planes import PLANES
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

    def diagnose(self, run: Run) -> Any:
        """verify, when checks failed: what this plane finds wrong on the hosts, for its pure half's causes
        (Diagnosis.plane). run.facts is empty; run.addresses holds the docker hosts' underlay addresses."""
        return None

    def down_end(self, run: Run) -> None:
        """`down`, after daemon.json is restored (kvstore: keys wiped, store stopped, its data removed)."""


def executor_halves() -> dict[str, ControlPlane]:
    """One fresh instance of each plane's executor half per run (they keep the facts they gathered)."""
    return {n: importlib.import_module(f"{PLANES[n]}.executor").Plane() for n in PLANES}
