"""Break-and-fix scenario store-stopped."""

from __future__ import annotations

import shlex

from labctl.errors import UsageError
from labctl.model.playbook import Playbook
from labctl.plan.breaks.base import STORE_START, STORE_STOP, Action, Injection, LabFacts, Scenario, running_container
from labctl.planes import traits


def plan(pb: Playbook, facts: LabFacts, docker_hosts: list[str], host: str | None, container: str | None,
         network: str | None) -> Injection:
    if pb.store is None or (pb.control != "auto" and traits(pb.control).store != "required"):
        raise UsageError(f"store-stopped needs a cluster store (control plane kvstore); {pb.source} has "
                         f"{'none' if pb.store is None else 'control ' + pb.control}")
    c = running_container(pb, container, facts, lambda x: any(pb.driver_of(a.network) == "overlay"
                                                       for a in x.networks), "on an overlay")
    q = shlex.quote(c.name)
    return Injection("store-stopped", pb.name, f"store on {pb.store.host} stopped, {c.name} restarted on {c.host}", (
        Action(pb.store.host, (STORE_STOP,), (STORE_START,)),
        # the restart fails while the store is down: Docker cannot join the container to the overlay again
        Action(c.host, (f"docker restart -t 1 {q} >/dev/null 2>&1 || true",), (f"docker start {q} >/dev/null",)),
    ))


SCENARIO = Scenario("store-stopped", "stop the cluster store, then restart one overlay container, which cannot rejoin",
                    "the container's checks fail: 'C is not running ...: the cluster store does not answer'; "
                    "containers "
                    "that joined before keep working", "a playbook with a store (control plane kvstore)",
                    "--container (default: the last container on an overlay)",
                    plan=plan)
