"""`up` and `down` of a playbook on the inventory's hosts: the pipeline that sequences the steps (facts in
executors.hostfacts, daemon configuration in executors.daemonconf, gossip in executors.gossip, the lab's objects
in executors.labobjects); the side-effect half of plan.lab."""

from __future__ import annotations

from labctl.errors import HostsFailed
from labctl.executors import breaks
from labctl.executors.daemonconf import configure_daemons, recover_engines, restore_daemon
from labctl.executors.facts import ask
from labctl.executors.gossip import ensure_attached, ensure_gateway_bridges, wait_overlay_gossip
from labctl.executors.hostfacts import host_facts
from labctl.executors.labimages import ensure_images
from labctl.executors.labobjects import lab_containers, lab_networks
from labctl.executors.remote import Hosts
from labctl.executors.steps import PreflightRefused, Report, run_steps
from labctl.executors.store import store_runner
from labctl.model.inventory import Inventory
from labctl.model.playbook import Playbook
from labctl.plan import controlplane
from labctl.plan.controlplane import Engine
from labctl.plan.down import DownFacts, down_facts, plan_down
from labctl.plan.lab import (
    Existing,
    plan_containers,
    plan_detach,
    plan_drift,
    plan_networks,
    plan_restore,
)
from labctl.plan.preflight import preflight_problems, underlay_problems
from labctl.planes import traits
from labctl.planes.executor_base import Run, executor_halves
from labctl.providers import registry
from labctl.ui import Progress

# ---------------------------------------------------------------- up


def up(inv: Inventory, pb: Playbook, hosts: Hosts, progress: Progress) -> Report:
    report = Report()
    docker_names = [h.name for h in inv.docker_hosts]
    manager = registry.service_manager(inv)
    recover_engines(inv, pb, hosts, docker_names, manager, store_runner(inv, pb, manager) if pb.store else None,
                    progress, report)
    progress.step("all", "preflight: engines, IDs, hostnames, interfaces, daemon.json, names and subnets in use")
    facts = hosts.each(lambda n, c: host_facts(c, n, pb.name), docker_names, step="preflight")
    problems: list[str] = []
    control = ""   # no overlay and no store: no plane is active (each only cleans up after itself)
    if controlplane.needs_decision(pb):
        decision = controlplane.decide(pb.control, pb.store.backend if pb.store else None,
                                       [Engine(n, f.engine_version, f.consul_backend) for n, f in facts.items()])
        progress.step("all", f"overlay control plane: {decision.control} ({decision.why})")
        problems += decision.problems
        control = decision.control
        pb = controlplane.effective(pb, control)
    addresses = {n: f.addresses[inv.underlay_interface][0] for n, f in facts.items()
                 if f.addresses.get(inv.underlay_interface)}
    run = Run(inv, pb, hosts, docker_names, manager, progress, report, facts, addresses)
    planes = executor_halves()
    for name, plane in planes.items():
        problems += plane.preflight(run, name == control)
    problems += preflight_problems(pb, facts) + underlay_problems(inv, facts)
    if problems:
        raise PreflightRefused(problems)
    images: list[tuple[str, str]] = []
    ensure_images(inv, pb, hosts, facts, progress, images)
    for host, what in images:
        report.add(host, what)
    for name, plane in planes.items():
        plane.bootstrap(run, name == control)
    configure_daemons(inv, pb, hosts, facts, manager, progress, report)
    if control and traits(control).docker_overlay and any(n.driver == "overlay" for n in pb.networks):
        ensure_gateway_bridges(pb, hosts, docker_names, facts, progress, report)
    for name, plane in planes.items():
        plane.join(run, name == control)
    nets = hosts.each(lambda n, c: lab_networks(c, pb.name), docker_names, step="list networks")
    ctrs = hosts.each(lambda n, c: lab_containers(c, pb.name), docker_names, step="list containers")
    try:
        drift_ctrs, drift_nets = plan_drift(pb, nets, ctrs)
        run_steps(hosts, drift_ctrs, progress, report, "drift: containers")
        run_steps(hosts, drift_nets, progress, report, "drift: networks")
        for name, plane in planes.items():
            plane.before_networks(run, name == control)
        run_steps(hosts, plan_detach(pb, inv, nets), progress, report, "detach from changed networks")
        run_steps(hosts, plan_networks(pb, inv, nets), progress, report, "networks")
        for name, plane in planes.items():
            plane.after_networks(run, name == control)
        now = hosts.each(lambda n, c: lab_containers(c, pb.name), docker_names, step="list containers")
        run_steps(hosts, plan_containers(pb, now), progress, report, "containers")
    except HostsFailed as exc:
        exc.notes += rollback(pb, hosts, docker_names, nets, ctrs, progress)
        raise
    ensure_attached(pb, hosts, docker_names, progress, report)
    wait_overlay_gossip(pb, hosts, progress, report)
    return report


def rollback(pb: Playbook, hosts: Hosts, names: list[str], before_nets: dict[str, dict[str, Existing]],
             before_ctrs: dict[str, dict[str, Existing]], progress: Progress) -> list[str]:
    """Docker refused a change part-way: bring back the lab's networks and containers as they were before this run
    changed them (from the specs recorded in their labels), so that a lab that worked still works. Best effort:
    returns lines that say what came back and what did not."""
    progress.step("all", "Docker refused a change: restoring the lab's networks and containers as they were")
    after_nets = hosts.each(lambda n, c: lab_networks(c, pb.name), names, step="list networks")
    after_ctrs = hosts.each(lambda n, c: lab_containers(c, pb.name), names, step="list containers")
    steps, lost = plan_restore(pb, before_nets, before_ctrs, after_nets, after_ctrs)
    notes = [f"not restored: {what}" for what in lost]
    for phase in ("network", "container"):
        mine = [s for s in steps if s.what.startswith(phase)]
        try:
            run_steps(hosts, mine, progress, Report(), f"restore {phase}s")
            notes += [f"restored: {s.what} on {s.host}" for s in mine]
        except HostsFailed as exc:
            failed = {f.host for f in exc.failures}
            notes += [f"restored: {s.what} on {s.host}" for s in mine if s.host not in failed]
            notes += [f"NOT restored on {f.host}: {f.stderr_tail.splitlines()[-1] if f.stderr_tail else ''}"
                      for f in exc.failures]
    if not steps and not lost:
        notes.append("nothing the lab had before this run was changed; what this run created stays (`labctl up` "
                     "again continues from it, `labctl down` removes it)")
    return notes


# ---------------------------------------------------------------- down


def undo_faults(inv: Inventory, pb: Playbook, hosts: Hosts, progress: Progress, report: Report) -> None:
    """A fault `labctl break` injected is reverted first (an iptables rule, an MTU: nothing else of `down` would)."""
    try:
        report.changes += breaks.undo(inv, pb, hosts, progress)
    except HostsFailed as exc:
        report.skipped += [f"{f.host}: the injected fault was not undone: {f.stderr_tail.strip()}"
                           for f in exc.failures]


def remove_objects(pb: Playbook, hosts: Hosts, names: list[str], progress: Progress, report: Report) -> None:
    """The lab's containers and networks, as plan.down plans them from what each host shows (one round trip)."""
    asked = down_facts(pb.name)
    found = hosts.each(lambda n, c: ask(c, n, asked), names, step="lab objects")
    plan = plan_down({n: DownFacts(n, a[asked[0]], a[asked[1]]) for n, a in found.items()}, names)
    run_steps(hosts, plan.containers, progress, report, "remove containers")
    for name in names:   # host by host: overlay removal must not race between hosts
        run_steps(hosts, [s for s in plan.networks if s.host == name], progress, report, "remove networks")


def down(inv: Inventory, pb: Playbook, hosts: Hosts, progress: Progress) -> Report:
    """Everything of the lab goes, whatever state an earlier run left and whichever control plane it used: a stopped
    dockerd or store is started first (what cannot be started or reached is skipped, named in the report, and down
    exits non-zero); every plane then removes what this lab has of it."""
    report = Report()
    manager = registry.service_manager(inv)
    skipped = recover_engines(inv, pb, hosts, [h.name for h in inv.docker_hosts], manager,
                              store_runner(inv, pb, manager) if pb.store else None, progress, report, strict=False)
    report.skipped += [f"{n}: {why}" for n, why in skipped.items()]
    undo_faults(inv, pb, hosts, progress, report)
    docker_names = [h.name for h in inv.docker_hosts if h.name not in skipped]
    run = Run(inv, pb, hosts, docker_names, manager, progress, report)
    planes = executor_halves().values()
    for plane in planes:
        plane.down_begin(run)
    remove_objects(pb, hosts, docker_names, progress, report)
    for plane in planes:
        plane.teardown(run)
    hosts.each(lambda n, c: restore_daemon(inv, pb.name, n, c, manager, progress, report), docker_names,
               step="restore daemon config")
    for plane in planes:
        plane.down_end(run)
    return report
