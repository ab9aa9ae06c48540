"""`labctl break`: inject a scenario's fault host by host, each host's undo recorded there before its change;
`labctl break --undo` (and `down`) runs the recorded undo commands in the order of the steps, then removes the
records. A run killed at any line leaves a record whose undo is safe to run (see plan.breaks)."""

from __future__ import annotations

import dataclasses
import random
import shlex

from fabric import Connection

from labctl.errors import HostFailure, HostsFailed, UsageError
from labctl.executors.facts import ask
from labctl.executors.remote import Hosts
from labctl.executors.status import gather as gather_status
from labctl.executors.store import store_runner
from labctl.executors.verify import underlay_facts
from labctl.model.inventory import Inventory
from labctl.model.playbook import Playbook
from labctl.plan import breaks as plan
from labctl.plan.breaks import draw
from labctl.providers import registry
from labctl.ui import Progress


def read_records(inv: Inventory, pb: Playbook, hosts: Hosts) -> dict[str, dict]:
    """Each host's record of a fault injected into this lab (hosts without one are left out)."""
    record = plan.record_fact(pb.name)
    found = hosts.each(lambda n, c: ask(c, n, [record])[record], [h.name for h in inv.hosts],
                       step="read fault records")
    return {h: r for h, r in found.items() if r is not None}


def lab_facts(inv: Inventory, pb: Playbook, hosts: Hosts) -> plan.LabFacts:
    address = underlay_facts(inv)[0]
    status = gather_status(inv, pb, hosts, vnis=False, also=(address,))
    down = status.not_usable
    if down:
        raise UsageError("cannot break a lab whose hosts are not all up: " + "; ".join(
            f"{h}: {why}" for h, why in sorted(down.items())), hint="`labctl up` first")
    return plan.LabFacts(underlay={n: s[address] for n, s in status.answered().items()},
                         state={c.name: c.state or "" for c in status.containers},
                         addresses={c.name: {k: v for k, v in c.addresses.items() if v} for c in status.containers},
                         iface=inv.underlay_interface)


def inject(inv: Inventory, pb: Playbook, hosts: Hosts, scenario: str, progress: Progress, host: str | None = None,
           container: str | None = None, network: str | None = None) -> plan.Injection:
    facts = _facts_unbroken(inv, pb, hosts, progress)
    return _apply(inv, pb, hosts, plan.plan_break(pb, inv, scenario, facts, host, container, network), progress)


def inject_drawn(inv: Inventory, pb: Playbook, hosts: Hosts, scenario: str, rng: random.Random,
                 progress: Progress, causes: str = "show") -> plan.Injection:
    """The scenario with its host, container or network drawn (break --random): the first draw that fits.
    `causes`: the class file's word on what verify shows of it, kept in the record."""
    facts = _facts_unbroken(inv, pb, hosts, progress)
    refusals = []
    for host, container, network in draw.option_draws(scenario, inv, pb, rng):
        try:
            inj = plan.plan_break(pb, inv, scenario, facts, host, container, network)
        except UsageError as exc:
            refusals.append(exc.message)
            continue
        return _apply(inv, pb, hosts, dataclasses.replace(inj, causes=causes), progress)
    raise UsageError(f"{scenario} fits nothing of this lab: {refusals[-1]}")


def _facts_unbroken(inv: Inventory, pb: Playbook, hosts: Hosts, progress: Progress) -> plan.LabFacts:
    records = read_records(inv, pb, hosts)
    if records:
        first = min(records.values(), key=lambda r: r["step"])
        raise UsageError(f"{pb.name} already has a fault injected: {first.get('scenario')} "
                         f"({first.get('target')})", hint=f"`labctl break --undo -p {pb.source}` first")
    progress.step("all", "reading the lab's state (containers, addresses, underlay)")
    return lab_facts(inv, pb, hosts)


def _apply(inv: Inventory, pb: Playbook, hosts: Hosts, inj: plan.Injection, progress: Progress) -> plan.Injection:
    try:
        for step, action in enumerate(inj.actions):
            conn = hosts.conn(action.host)
            progress.step(action.host, f"{inj.scenario}: recording how to undo it, then breaking")
            conn.run(plan.write_record(pb.name, inj.record(step)), hide=True)
            for command in action.apply:
                _run(inv, pb, conn, action.host, command, progress)
    except Exception:
        # a step the host refused: what was done so far is taken back, so the lab that worked still works
        progress.step("all", f"{inj.scenario} failed: undoing what was done")
        undo(inv, pb, hosts, progress)
        raise
    return inj


def undo(inv: Inventory, pb: Playbook, hosts: Hosts, progress: Progress) -> list[str]:
    """Revert whatever fault the hosts record for this lab, step by step; what was reverted, per host. A step that
    fails keeps its record (run it again) and the others still run; then HostsFailed names it."""
    records = sorted(read_records(inv, pb, hosts).items(), key=lambda hr: hr[1]["step"])
    done, failures = [], []
    for host, record in records:
        conn = hosts.conn(host)
        progress.step(host, f"undoing {record.get('scenario')}: {record.get('target')}")
        try:
            for command in record["undo"]:
                _run(inv, pb, conn, host, command, progress)
        except HostsFailed as exc:
            failures += exc.failures
            continue
        conn.run(f"rm -f {shlex.quote(plan.record_path(pb.name))}", hide=True)
        done.append(f"{host}: undid {record.get('scenario')} ({record.get('target')})")
    if failures:
        raise HostsFailed("break --undo", failures)
    return done


def _run(inv: Inventory, pb: Playbook, conn: Connection, host: str, command: str, progress: Progress) -> None:
    if command in (plan.STORE_STOP, plan.STORE_START):
        if pb.store is None:
            return
        runner = store_runner(inv, pb, registry.service_manager(inv))
        if command == plan.STORE_STOP:
            runner.stop(conn)
        else:
            runner.start(conn)
            progress.step(host, "waiting for the store to answer")
            runner.wait_healthy(conn)
        return
    res = conn.run(command, hide=True, warn=True)
    if not res.ok:
        raise HostsFailed("break", [HostFailure(host, command, res.exited, str(res.stderr or res.stdout)[-600:])])
