"""Break-and-fix scenarios: one named fault injected into a running lab for a student to diagnose, recorded on
the hosts so that `labctl break --undo` (and `down`) reverts it exactly.

Pure: given the playbook, the inventory and what the hosts showed (underlay addresses and MTUs, the containers'
state and addresses), plan_break returns the actions per host: the commands that inject the fault and the commands
that revert it. Every undo command is safe to run after a partial apply (a run killed half-way) and twice.

One module per scenario in this package, each with its SCENARIO (what it does, what verify then shows, which labs
it fits, and its planner); SCENARIOS below is the only list of them. A new scenario is one module plus one line.
"""

from __future__ import annotations

from labctl.errors import UsageError
from labctl.model.inventory import Inventory
from labctl.model.playbook import Playbook
from labctl.plan.breaks import (
    container_disconnected,
    container_stopped,
    mtu_lowered,
    store_stopped,
    vxlan_blocked,
    wrong_subnet,
)
from labctl.plan.breaks.base import (
    IN_THE_WAY,
    LOWERED_MTU,
    RECORD_DIR,
    STORE_START,
    STORE_STOP,
    Action,
    Injection,
    LabFacts,
    Scenario,
    parse_record,
    record_fact,
    record_path,
    write_record,
)

__all__ = ["IN_THE_WAY", "LOWERED_MTU", "RECORD_DIR", "SCENARIOS", "STORE_START", "STORE_STOP",
           "Action", "Injection", "LabFacts", "Scenario", "describe", "parse_record", "plan_break", "record_fact",
           "record_path", "write_record"]

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    vxlan_blocked.SCENARIO,
    store_stopped.SCENARIO,
    mtu_lowered.SCENARIO,
    container_stopped.SCENARIO,
    container_disconnected.SCENARIO,
    wrong_subnet.SCENARIO,
)}


def plan_break(pb: Playbook, inv: Inventory, scenario: str, facts: LabFacts, host: str | None = None,
               container: str | None = None, network: str | None = None) -> Injection:
    """The actions for one scenario, or a UsageError (exit 2, nothing changed) saying why it does not apply."""
    if scenario not in SCENARIOS:
        raise UsageError(f"no scenario {scenario!r}; scenarios: {', '.join(SCENARIOS)}",
                         hint="`labctl list-scenarios` describes them")
    docker_hosts = [h.name for h in inv.docker_hosts]
    if host is not None and host not in docker_hosts:
        raise UsageError(f"--host {host!r} is not a docker host of {inv.source}; docker hosts: "
                         f"{', '.join(docker_hosts)}")
    if container is not None and container not in {c.name for c in pb.containers}:
        raise UsageError(f"--container {container!r} is not a container of {pb.source}")
    return SCENARIOS[scenario].plan(pb, facts, docker_hosts, host, container, network)


def describe(inj: Injection) -> str:
    s = SCENARIOS[inj.scenario]
    return f"{inj.scenario}: {inj.target}\n  verify will show: {s.symptom}"
