"""Hosts, `up`/`down` reports and `status`."""

from __future__ import annotations

from rich.console import Console

from labctl.executors import classlab, lab
from labctl.model.inventory import Inventory
from labctl.plan.status import ControlStatus, LabStatus
from labctl.planes.registry import plan_half
from labctl.providers import registry
from labctl.providers.base import Endpoint
from labctl.views.console import heading, make, table


def ssh_text(ep: Endpoint) -> str:
    """How labctl logs in: user@address:port, then sudo and the bastion when there are any."""
    text = f"{ep.user}@{ep.address}:{ep.port}"
    if ep.become and ep.user != "root":
        text += f" ({ep.become})"
    if ep.jump is not None:
        text += f" via {ep.jump.user}@{ep.jump.address}:{ep.jump.port}"
    return text


def print_hosts(inv: Inventory, engine_ids: dict[str, str] | None = None, console: Console | None = None) -> None:
    console = console or make()
    heading(console, f"lab {inv.name} ({inv.provider})")
    eps = registry.endpoints(inv)
    t = table("host", "address", "roles", "ssh", "engine", *(["docker engine id"] if engine_ids is not None else []))
    for ep in eps:
        host = inv.host(ep.name)
        row = [ep.name, ep.address, ",".join(ep.roles), ssh_text(ep), host.engine if host.is_docker else "-"]
        if engine_ids is not None:
            row.append(engine_ids.get(ep.name, "-"))
        t.add_row(*row)
    console.print(t)
    resolved = [ep for ep in eps if any(not o.startswith("inventory") and o != "default" for _, o in ep.origins)]
    for ep in resolved:
        console.print(f"{ep.name}: " + "; ".join(f"{fld} from {origin}" for fld, origin in ep.origins
                                                 if origin != "default"), soft_wrap=True)


def control_line(control: ControlStatus) -> str:
    """status: the overlay's control plane and, for swarm and vxlan, each host's part in it."""
    head = f"overlay control plane: {control.plane or 'none yet'} (requested: {control.requested})"
    tail = plan_half(control.plane).status_text(control.hosts) if control.plane else ""
    return f"{head}; {tail}" if tail else head


def _status_tables(console: Console, result: LabStatus) -> None:
    heading(console, f"lab {result.lab or '(every labctl lab)'}: hosts")
    hosts = table("host", "roles", "engine", "state")
    for h in result.hosts:
        hosts.add_row(h.name, ",".join(h.roles), h.engine or "-", h.error or h.state or "ok")
    console.print(hosts)
    heading(console, "networks")
    nets = table("network", "driver", "scope", "subnet", "gateway", "VNI", "hosts")
    for n in result.networks:
        nets.add_row(n.name, n.driver or "", n.scope or "", n.subnet or "", n.gateway or "",
                     str(n.vni) if n.vni is not None else "-", ",".join(n.hosts))
    console.print(nets)
    heading(console, "containers")
    ctrs = table("container", "host", "state", "addresses")
    for c in result.containers:
        addrs = ", ".join(f"{k}={v}" for k, v in c.addresses.items() if v) or c.network_mode or "-"
        ctrs.add_row(c.name, c.host, c.state or "", addrs)
    console.print(ctrs)
    if result.control:
        console.print(control_line(result.control), soft_wrap=True)
    store = result.store
    if store:
        state = store.error or ("running" if store.running else "not running")
        console.print(f"store: {store.url} on {store.host}: {state}", soft_wrap=True)
        contents = store.contents
        if contents and not contents.get("error"):
            console.print(f"  leader {contents['leader'] or '(none)'}; registered engines: "
                          f"{', '.join(contents['nodes']) or '(none)'}; overlays in the store: "
                          f"{', '.join(store.overlays or []) or '(none)'} ({contents['keys']} keys under docker/)",
                          soft_wrap=True)
        elif contents:
            console.print(f"  cannot read the store: {contents['error']}", soft_wrap=True)


def print_status(result: LabStatus, quiet: bool = False, console: Console | None = None) -> None:
    """The tables, then the verdict against the playbook (with --quiet: only that)."""
    console = console or make()
    if not quiet:
        _status_tables(console, result)
    for text in result.missing or []:
        console.print(f"missing: {text}", soft_wrap=True)
    for text in result.extra or []:
        console.print(f"extra: {text}", soft_wrap=True)
    if result.missing == [] and not result.extra:
        console.print("everything in the playbook exists and runs, and nothing else of the lab")
    if quiet:
        for name, why in result.not_usable.items():
            console.print(f"{name}: {why}", soft_wrap=True)


def print_report(verb: str, name: str, report: lab.Report, seconds: float, quiet: bool = False,
                 console: Console | None = None) -> None:
    console = console or make()
    for text in report.skipped:
        console.print(f"{verb} {name}: SKIPPED {text}", soft_wrap=True)
    if report.skipped:
        console.print(f"{verb} {name}: incomplete: {len(report.skipped)} part(s) could not be touched (see above); "
                      f"run `labctl {verb}` again once they are reachable", soft_wrap=True)
    if report.changes:
        console.print(f"{verb} {name}: {len(report.changes)} change(s) in {seconds:.1f}s", soft_wrap=True)
        for text in report.changes if not quiet else []:
            console.print(f"  {text}", soft_wrap=True)
    else:
        state = {"up": "everything was already as the playbook says", "down": "nothing of the lab was left",
                 "provision": "every host already has what the playbook needs"}[verb]
        console.print(f"{verb} {name}: no changes ({seconds:.1f}s): {state}", soft_wrap=True)


def print_class_report(verb: str, name: str, outcomes: list[classlab.Outcome], seconds: float, quiet: bool = False,
                       console: Console | None = None) -> None:
    """`up --class` / `down --class`: every student with ok or the reason."""
    console = console or make()
    if not quiet:
        heading(console, f"class {name}: {verb} ({len(outcomes)} students, {seconds:.1f}s)")
        t = table("student", "lab", "result", "changes", "seconds")
        for o in outcomes:
            result = "ok" if o.ok else (o.error if o.report is None else
                                        f"incomplete: {'; '.join(o.report.skipped)}")
            t.add_row(o.student, o.lab, result, str(len(o.report.changes)) if o.report else "-", f"{o.seconds:.1f}",
                      style="" if o.ok else "red")
        console.print(t)
    failed = [o.student for o in outcomes if not o.ok]
    console.print(f"{verb} --class {name}: {len(outcomes) - len(failed)} of {len(outcomes)} student(s) ok"
                  + (f"; failed: {', '.join(failed)}" if failed else "") + f" ({seconds:.1f}s)", soft_wrap=True)
