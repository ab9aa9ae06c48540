"""`labctl status`: what of the lab exists on each host right now (networks, VNIs, containers, addresses), asked
in one SSH round trip per docker host; the typed result and its parsing are labctl.plan.status."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fabric import Connection

from labctl.executors.facts import ask
from labctl.executors.remote import Hosts, failure_from
from labctl.executors.store import store_runner
from labctl.facts import Fact
from labctl.model.inventory import Inventory
from labctl.model.playbook import Playbook
from labctl.plan.controlplane import needs_decision
from labctl.plan.lab import LABEL
from labctl.plan.status import (
    HostState,
    LabStatus,
    StoreStatus,
    control_status,
    host_state,
    status_facts,
    summarize,
)
from labctl.planes.registry import plan_halves
from labctl.providers import registry


def gather(inv: Inventory, pb: Playbook | None, hosts: Hosts, vnis: bool = True, also: Sequence[Fact[Any]] = (),
           store_contents: bool = False) -> LabStatus:
    """Status of every docker host and of the store, all at once; a host that cannot be asked is reported with its
    error, not dropped. `also`: the caller's own facts, asked in the same round trip and read back as
    `status.states[host][FACT]` (verify asks the underlay and its probe tools, and no VNIs: one round trip per
    host for all it needs before probing)."""
    label_filter = f"{LABEL}={pb.name}" if pb else LABEL
    names = [h.name for h in inv.docker_hosts]
    store_host = pb.store.host if pb is not None and pb.store is not None else None
    control = pb is not None and needs_decision(pb)
    halves = plan_halves()
    facts = [*status_facts(label_filter, vnis, halves, control), *also]
    states: dict[str, HostState] = {}
    store: list[StoreStatus] = []

    def one(name: str, conn: Connection) -> None:
        if name in names:
            try:
                states[name] = host_state(ask(conn, name, facts, warn=False), label_filter, halves, control)
            except Exception as exc:  # noqa: BLE001 - status reports every host, reachable or not
                states[name] = HostState(name, error=str(failure_from(name, exc)))
        if name == store_host and pb is not None:
            store.append(store_status(inv, pb, hosts, store_contents))

    hosts.each(one, names + ([store_host] if store_host and store_host not in names else []), step="status")
    result = summarize(inv, pb, states)
    if control and pb is not None:
        answered = {n: s for n, s in states.items() if s.error is None}
        result.control = control_status(pb, halves, {p: {n: s.planes[p] for n, s in answered.items()}
                                                     for p in halves})
    if store:
        result.store = store[0]
    return result


def store_status(inv: Inventory, pb: Playbook, hosts: Hosts, contents: bool = False) -> StoreStatus:
    """contents: also what Docker wrote into the store (Consul: over an SSH forward; `labctl status` asks for it,
    verify reads it only when it diagnoses a failure)."""
    assert pb.store is not None
    entry = StoreStatus(backend=pb.store.backend, host=pb.store.host, url=pb.store.url)
    try:
        runner = store_runner(inv, pb, registry.service_manager(inv))
        conn = hosts.conn(pb.store.host)
        entry.running = runner.is_running(conn)
        found = runner.contents(conn) if entry.running and contents else None
        if found is not None:   # Consul, through its API: what Docker wrote there
            entry.contents = found.as_dict()
            entry.registered = found.nodes
            entry.overlays = sorted(found.networks.values())
    except Exception as exc:  # noqa: BLE001
        entry.running, entry.error = None, str(failure_from(pb.store.host, exc))
    return entry
