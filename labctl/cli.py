"""labctl command line. Thin: parse arguments, call the library, map errors to exit codes.

Exit codes: 0 success, 1 a host or step failed, 2 bad input or missing prerequisite (nothing changed), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from labctl import defaults, engines, gradebook, html, verdict
from labctl.errors import LabctlError, Problem, UsageError, ValidationError
from labctl.executors import breaks as breaks_exec
from labctl.executors import dockerhost, enginecache, lab, provision, status, verify
from labctl.executors import grade as grade_exec
from labctl.executors import graph as graph_exec
from labctl.executors import trace as trace_exec
from labctl.executors.hostlock import HostLocks, holder_for
from labctl.executors.images import archive_from_path, busybox_rootfs
from labctl.executors.remote import Hosts
from labctl.executors.services import manager_for
from labctl.model.class_roster import Student, load_roster
from labctl.model.exercise import load_exercise
from labctl.model.inventory import Inventory, load_inventory
from labctl.model.playbook import Playbook, load_playbook
from labctl.plan import breaks as breaks_plan
from labctl.plan import grade as grade_plan
from labctl.plan.controlplane import needs_decision
from labctl.providers import class_sandbox, registry, sandbox
from labctl.ui import Progress

MAX_STUDENTS = 40
CLASS_LABS_AT_ONCE = 4     # sandbox labs brought up together (each starts a dockerd per docker host)


DEFAULTS_HELP = "$LABCTL_{kind}, then fabric.yaml's labctl.{low}, then the shipped {shipped}"


def _inventory_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--inventory", "-i", metavar="FILE", help="inventory file (default: " + DEFAULTS_HELP.format(
        kind="INVENTORY", low="inventory", shipped=defaults.SHIPPED["inventory"]) + ")")


def _wait_arg(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--wait", type=int, default=0, metavar="SECONDS",
                   help=f"when another labctl run holds {what}, wait up to SECONDS for it (default: refuse, exit 2)")


def _playbook_arg(p: argparse.ArgumentParser, every_lab: str | None = None) -> None:
    """`every_lab`: what the command does with --all-labs (no playbook) instead."""
    p.add_argument("--playbook", "-p", metavar="FILE", help="playbook file (default: " + DEFAULTS_HELP.format(
        kind="PLAYBOOK", low="playbook", shipped=defaults.SHIPPED["playbook"]) + ")")
    if every_lab:
        p.add_argument("--all-labs", action="store_true", help=f"no playbook: {every_lab}")


GROUPS = {
    "lab": ("up", "down", "provision", "validate"),
    "inspect": ("verify", "status", "graph", "trace"),
    "classroom": ("grade", "break", "list-scenarios"),
    "hosts": ("sandbox", "destroy", "hosts", "ssh", "engines", "image"),
}
TAGLINE = "labctl: multi-host Docker network labs (bridge, macvlan, overlay/VXLAN), brought up and proven"


class TopParser(argparse.ArgumentParser):
    """The top-level parser: its help lists the commands by group, one line each."""

    def format_help(self) -> str:
        sub = next(a for a in self._actions if isinstance(a, argparse._SubParsersAction))
        helps = {a.dest: a.help or "" for a in sub._choices_actions}
        width = max(len(n) for n in helps) + 2
        lines = [self.format_usage().rstrip(), "", TAGLINE, ""]
        for group, names in GROUPS.items():
            lines.append(f"{group}:")
            lines += [f"  {n:<{width}}{helps[n]}" for n in names]
            lines.append("")
        lines += ["options:", "  -h, --help    this list; `labctl COMMAND --help` for one command's options",
                  "  -q, --quiet   no progress lines, only the outcome", ""]
        lines += textwrap.wrap("The inventory and playbook default to $LABCTL_INVENTORY and $LABCTL_PLAYBOOK, then "
                               "the labctl: section of fabric.yaml, then the shipped "
                               + " and ".join(defaults.SHIPPED.values()) + ".", 78)
        return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = TopParser(prog="labctl", description=TAGLINE)
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress lines, only the outcome")
    sub = parser.add_subparsers(dest="command", required=False, metavar="COMMAND",
                                parser_class=argparse.ArgumentParser)
    p = sub.add_parser("help", help="this list, or one command's help (`labctl help verify`)")
    p.add_argument("topic", nargs="*", metavar="COMMAND", help="a command (and its action: `sandbox up`)")

    sb = sub.add_parser("sandbox", help="sandbox hosts on this machine (namespaces + sshd + dockerd)")
    sbsub = sb.add_subparsers(dest="sandbox_command", required=True, metavar="ACTION")
    for name, text in (("up", "create or repair the inventory's sandbox hosts (idempotent)"),
                       ("down", "remove the lab's hosts and every trace of them")):
        p = sbsub.add_parser(name, help=text)
        _inventory_arg(p)
        _wait_arg(p, "the lab's sandbox state")
        if name == "up":
            p.add_argument("--class", dest="students", type=int, metavar="N",
                           help="rehearse a class: N student labs like the inventory's, each on its own subnet; "
                                "writes their inventories and a class file for `labctl grade --class`")
            p.add_argument("--class-dir", metavar="DIR",
                           help="where --class writes the inventories and class.yaml (default: class-LAB)")
        else:
            p.add_argument("--class", dest="roster", metavar="CLASS.yaml",
                           help="remove every student lab of this class file (as `sandbox up --class` wrote it)")
    p = sbsub.add_parser("list", help="sandbox labs that exist on this machine")
    p.add_argument("--json", action="store_true")

    for name, text in (("up", "bring the playbook's lab up on the inventory's hosts (idempotent)"),
                       ("down", "remove the lab: containers, networks, store keys, daemon config changes")):
        p = sub.add_parser(name, help=text)
        _inventory_arg(p)
        _playbook_arg(p)
        _wait_arg(p, "the hosts")
        if name == "up":
            p.add_argument("--provision", action=argparse.BooleanOptionalAction, default=None,
                           help="install Docker and the store first, as `labctl provision` (default: on for "
                                "vagrant and static inventories, off for sandbox hosts, which share this "
                                "machine's packages)")

    p = sub.add_parser("provision", help="install Docker and the store on the hosts (idempotent)",
                       description="install what the playbook needs on the hosts: Docker, the store (idempotent)")
    _inventory_arg(p)
    _playbook_arg(p)
    _wait_arg(p, "the hosts")

    p = sub.add_parser("verify", help="probe who reaches whom; compare with what the playbook implies")
    _inventory_arg(p)
    _playbook_arg(p)
    p.add_argument("--sample", action="store_true",
                   help="one pair per host pair, network and kind of check (for big labs)")
    p.add_argument("--json", metavar="FILE", help="write the verdict as JSON ('-' for stdout)")
    p.add_argument("--junit", metavar="FILE", help="write one JUnit testcase per check")
    p.add_argument("--html", metavar="FILE", help="write one self-contained page: coloured matrices, mismatches "
                                                  "with their causes, the topology picture")
    p.add_argument("--probe", choices=verify.PROBE_MODES, default="auto",
                   help="how to probe: fping from the host into each container's network namespace (fast), pings "
                        "inside the containers (needs sh and ping in the image), or auto: fping where the host "
                        "has fping, nsenter and python3 (default)")

    p = sub.add_parser("grade", help="grade an exercise done by hand: points per task (read-only)",
                       description="grade an exercise: the hosts' real objects (made by hand or not) and "
                                   "reachability against its tasks; points per task (read-only)")
    _inventory_arg(p)
    p.add_argument("--exercise", "-e", required=True, help="exercise file (see exercises/)")
    p.add_argument("--class", dest="roster", metavar="CLASS.yaml",
                   help="grade every student of this class file (student -> inventory) at once, instead of -i")
    p.add_argument("--json", metavar="FILE", help="write the grade (with --class: every student's) as JSON "
                                                  "('-' for stdout)")
    p.add_argument("--junit", metavar="FILE", help="write one JUnit testcase per task (a testsuite per student)")
    p.add_argument("--csv", metavar="FILE", help="write the roster (student, points per task, total) as CSV")
    p.add_argument("--details", action="store_true", help="also list what was found for tasks that passed")
    p.add_argument("--probe", choices=verify.PROBE_MODES, default="auto", help="how to probe, as for verify")

    p = sub.add_parser("break", help="inject a named fault for a student to diagnose; --undo reverts it",
                       description="inject one named fault into the running lab for a student to diagnose "
                                   "(`labctl list-scenarios`); --undo reverts it exactly")
    _inventory_arg(p)
    _playbook_arg(p)
    _wait_arg(p, "the hosts")
    p.add_argument("scenario", nargs="?", help="the scenario to inject (see `labctl list-scenarios`)")
    p.add_argument("--undo", action="store_true", help="revert the fault recorded on the hosts for this lab")
    p.add_argument("--host", help="the docker host to break (scenarios on a host)")
    p.add_argument("--container", help="the container to break (scenarios on a container)")
    p.add_argument("--network", help="the network (container-disconnected)")

    p = sub.add_parser("list-scenarios", help="the faults `labctl break` can inject, and what verify then shows")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("graph", help="draw the lab as it exists, marked against the playbook",
                       description="draw the lab as it exists (hosts, networks, containers, store), marked "
                                   "against the playbook")
    _inventory_arg(p)
    _playbook_arg(p, every_lab="everything labctl labelled, unmarked")
    p.add_argument("--format", "-f", choices=graph_exec.FORMATS, default="svg",
                   help="svg or png (Graphviz), dot, or mermaid text for Markdown (default: svg)")
    p.add_argument("--output", "-o", metavar="FILE",
                   help="where to write it ('-' for stdout; default: LAB.svg / LAB.png, stdout for dot and mermaid)")

    p = sub.add_parser("trace", help="the path of one ping through the hosts, proven by captures taken during it")
    _inventory_arg(p)
    _playbook_arg(p, every_lab="any labctl lab on the hosts")
    p.add_argument("src", help="source container")
    p.add_argument("dst", help="destination container or IPv4 address")
    p.add_argument("--network", "-n", help="the network to trace on (default: a shared one, overlay first)")
    p.add_argument("--pcap", metavar="DIR", help="keep the captures there, one .pcap per capture point (Wireshark)")
    p.add_argument("--count", "-c", type=int, default=3, choices=range(1, 11), metavar="N",
                   help="echoes to send, 1 to 10 (default 3)")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("status", help="what of the lab exists on each host: networks (scope, subnet, VNI), containers")
    _inventory_arg(p)
    _playbook_arg(p, every_lab="everything labctl labelled")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("destroy", help="alias of `sandbox down` for sandbox inventories")
    _inventory_arg(p)
    _wait_arg(p, "the lab's sandbox state")

    p = sub.add_parser("validate", help="check inventory, playbook, exercise, class file; no host is touched")
    _inventory_arg(p)
    _playbook_arg(p, every_lab="the inventory (and the exercise, the class file) only")
    p.add_argument("--exercise", "-e", help="exercise file, checked against the inventory")
    p.add_argument("--class", dest="roster", metavar="CLASS.yaml", help="class file, with every student's inventory")

    p = sub.add_parser("hosts", help="resolved SSH endpoints of the inventory's hosts")
    _inventory_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("ssh", help="open a shell (or run a command) on a host")
    _inventory_arg(p)
    p.add_argument("host")
    p.add_argument("remote_command", nargs="*", help="command to run instead of a shell (after --)")

    eng = sub.add_parser("engines", help="Docker engines a host can run: version, store backends, swarm, cached",
                         description="Docker engines a host can run (inventory `engine:`): version, "
                                     "cluster-store backends, swarm, whether cached")
    eng.add_argument("--json", action="store_true", help="machine-readable output")
    engsub = eng.add_subparsers(dest="engines_command", required=False, metavar="ACTION")
    p = engsub.add_parser("fetch", help="fetch one engine (or the consul server) from Debian's archive into the cache")
    p.add_argument("name", help="an engine name from `labctl engines` (debian-11, debian-12, debian-13) or consul")

    img = sub.add_parser("image", help="lab images without a registry")
    imgsub = img.add_subparsers(dest="image_command", required=True, metavar="ACTION")
    p = imgsub.add_parser("load", help="push an image (rootfs dir, rootfs tar or `docker save` tar) "
                                       "to all docker hosts")
    _inventory_arg(p)
    p.add_argument("source", help="directory with a root filesystem, or a tar file")
    p.add_argument("--tag", help="image name for a root filesystem (default: labctl/<dirname>:latest)")
    for _, subparser, text in walk(parser):
        subparser.description = subparser.description or text
        if not any(isinstance(a, argparse._SubParsersAction) for a in subparser._actions):
            subparser.add_argument("--quiet", "-q", action="store_true", default=argparse.SUPPRESS,
                                   help="no progress lines, only the outcome")
    return parser


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
         ) -> list[tuple[tuple[str, ...], argparse.ArgumentParser, str]]:
    """Every command as (words, its parser, its one-line help), actions of a command (`sandbox up`) included."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, subparser in action.choices.items():
                found.append(((*path, name), subparser, helps.get(name, "")))
                found += walk(subparser, (*path, name))
    return found


def load(args: argparse.Namespace, other_labs: bool = False) -> Inventory:
    return load_inventory(args.inventory, sandbox.existing_labs() if other_labs else None)


def require_sandbox(inv: Inventory, command: str) -> None:
    if inv.provider != "sandbox":
        message = f"`{command}` works on sandbox inventories only (this one is {inv.provider!r})"
        raise ValidationError([Problem(inv.source, "provider", message)])


def cmd_sandbox_up(args: argparse.Namespace, progress: Progress) -> int:
    if args.students is not None:
        return sandbox_up_class(args, progress)
    inv = load(args, other_labs=True)
    require_sandbox(inv, "labctl sandbox up")
    t0 = time.monotonic()
    with sandbox.state_lock(inv.name, "sandbox up", args.wait, progress):
        return _sandbox_up(inv, t0, progress)


def _bring_up(inv: Inventory, progress: Progress) -> tuple[int, dict[str, str]]:
    """The sandbox hosts, their dockerd and the lab image; the number of changes and each engine's ID."""
    actions = sandbox.up(inv, progress)
    created = [a.target for a in actions if a.kind == "create-host"]
    endpoints = registry.endpoints(inv)
    docker_names = [h.name for h in inv.docker_hosts]
    manager = manager_for(inv.provider)
    with Hosts(endpoints) as hosts:
        started = hosts.each(
            lambda name, conn: dockerhost.ensure_engine(
                conn, name, dockerhost.sandbox_dockerd(inv.name, name, sandbox.host_engine(inv, name)), manager,
                progress),
            docker_names, step="start dockerd")
        image = busybox_rootfs(inv.image)
        images = dockerhost.load_images(hosts, docker_names, image, progress)
        ids = hosts.group_run("docker info --format '{{.ID}}'", docker_names, step="docker info")
    changes = len(created) + sum(started.values()) + sum(images.values()) + sum(
        a.kind == "destroy-host" for a in actions)
    return changes, {n: s.strip() for n, s in ids.items()}


def _sandbox_up(inv: Inventory, t0: float, progress: Progress) -> int:
    changes, ids = _bring_up(inv, progress)
    print_hosts(inv, ids)
    paths = sandbox.paths_for(inv.name)
    verdict = f"{changes} change(s)" if changes else "no changes: every host was already up"
    print(f"sandbox {inv.name}: {len(inv.hosts)} hosts up in {time.monotonic() - t0:.1f}s; {verdict}")
    print(f"reach them: labctl ssh HOST -i {inv.source}   or   ssh -F {paths.ssh_config} HOST")
    return 0


def sandbox_up_class(args: argparse.Namespace, progress: Progress) -> int:
    """N student labs from one sandbox inventory, up in parallel (each under its own state lock)."""
    template = load(args)
    require_sandbox(template, "labctl sandbox up --class")
    if not 1 <= args.students <= MAX_STUDENTS:
        raise UsageError(f"--class takes 1 to {MAX_STUDENTS} students, not {args.students}")
    directory = args.class_dir or f"class-{template.name}"
    t0 = time.monotonic()
    roster_path = class_sandbox.write_class(template, args.students, directory, sandbox.existing_labs())
    roster = load_roster(roster_path)
    progress.step("all", f"{len(roster.students)} student labs from {template.source}: {roster_path}")

    def one(student: Student) -> tuple[str, int]:
        inv = student.inventory
        with sandbox.state_lock(inv.name, "sandbox up --class", args.wait, progress):
            return inv.name, _bring_up(inv, progress)[0]

    with ThreadPoolExecutor(max_workers=CLASS_LABS_AT_ONCE) as pool:
        futures = {s.name: pool.submit(one, s) for s in roster.students}
        results, failed = {}, {}
        for name, fut in futures.items():
            try:
                results[name] = fut.result()
            except LabctlError as exc:
                failed[name] = exc.message
    for s in roster.students:
        inv = s.inventory
        state = f"FAILED: {failed[s.name]}" if s.name in failed else f"up ({results[s.name][1]} change(s))"
        print(f"{s.name}\t{inv.name}\t{inv.subnet}\t{inv.source}\t{state}")
    print(f"class {roster.name}: {len(results)} of {len(roster.students)} student labs up in "
          f"{time.monotonic() - t0:.1f}s; grade them: labctl grade --class {roster_path} -e EXERCISE")
    print(f"remove them: labctl sandbox down --class {roster_path}")
    return 1 if failed else 0


def print_hosts(inv: Inventory, engine_ids: dict[str, str] | None = None) -> None:
    table = Table(title=f"lab {inv.name} ({inv.provider})", title_justify="left")
    for col in ("host", "address", "roles", "ssh", "engine"):
        table.add_column(col)
    if engine_ids is not None:
        table.add_column("docker engine id")
    for ep in registry.endpoints(inv):
        host = inv.host(ep.name)
        row = [ep.name, ep.address, ",".join(ep.roles), f"{ep.user}@{ep.address}:{ep.port}",
               host.engine if host.is_docker else "-"]
        if engine_ids is not None:
            row.append(engine_ids.get(ep.name, "-"))
        table.add_row(*[escape(x) for x in row])
    Console(highlight=False, emoji=False).print(table)


def cmd_sandbox_down(args: argparse.Namespace, progress: Progress) -> int:
    if getattr(args, "roster", None):
        roster = load_roster(args.roster)
        for s in roster.students:
            require_sandbox(s.inventory, "labctl sandbox down --class")
        for s in roster.students:
            with sandbox.state_lock(s.inventory.name, "sandbox down", args.wait, progress):
                removed = sandbox.down(s.inventory.name, progress)
            print(f"{s.name}\t{s.inventory.name}\t{'removed' if removed else 'nothing to remove'}")
        return 0
    inv = load(args)
    require_sandbox(inv, f"labctl {args.command}")
    sandbox.check_prerequisites(inv)
    t0 = time.monotonic()
    with sandbox.state_lock(inv.name, "sandbox down", args.wait, progress):
        removed = sandbox.down(inv.name, progress)
    what = "removed" if removed else "nothing to remove"
    print(f"sandbox {inv.name}: {what} ({time.monotonic() - t0:.1f}s)")
    return 0


def cmd_sandbox_list(args: argparse.Namespace, progress: Progress) -> int:
    labs = sandbox.existing_labs()
    if args.json:
        print(json.dumps([{"lab": k, "subnet": v} for k, v in labs.items()], indent=2))
    elif not labs:
        print("no sandbox labs on this machine")
    else:
        for name, subnet in labs.items():
            print(f"{name}\t{subnet}\t{sandbox.paths_for(name).dir}")
    return 0


CONTROL_RULES = {
    "auto": "auto: kvstore (the playbook's store) when every docker host's engine can use it, else swarm; "
            "decided by `up` from the engines, which `validate` does not ask",
    "kvstore": "kvstore (cluster store; Docker Engine 20.10 or older on every docker host)",
    "swarm": "swarm (swarm mode; Docker Engine 17.06 or later, current engines included)",
    "vxlan": "vxlan (labctl's own Linux VXLAN devices, Docker's macvlan on top; any engine; names of containers "
             "on other hosts do not resolve)",
}


def control_line(control: dict) -> str:
    """status: the overlay's control plane and, for swarm and vxlan, each host's part in it."""
    head = f"overlay control plane: {control['plane'] or 'none yet'} (requested: {control['requested']})"
    if control["plane"] == "swarm":
        return head + "; swarm: " + ", ".join(f"{h} {v['swarm']}" + (f" (VTEP {v['vtep']})" if v["vtep"] else "")
                                              for h, v in control["hosts"].items())
    if control["plane"] == "kvstore":
        return head + "; VTEPs (cluster-advertise): " + ", ".join(f"{h} {v['vtep'] or '-'}"
                                                                  for h, v in control["hosts"].items())
    if control["plane"] == "vxlan":
        parts = []
        for h, v in control["hosts"].items():
            devs = "; ".join(f"{d['device']} VNI {d['vni']} {'up' if d['up'] else 'DOWN'}, FDB "
                             f"{', '.join(d['peers']) or 'EMPTY'}" for d in v.get("vxlan", []))
            parts.append(f"{h} (VTEP {v['vtep'] or '-'}): {devs or 'no device'}")
        return head + "; " + " | ".join(parts)
    return head


def cmd_validate(args: argparse.Namespace, progress: Progress) -> int:
    inv = load(args)
    print(f"{inv.source}: ok ({inv.provider}, {len(inv.hosts)} hosts, {len(inv.docker_hosts)} docker)")
    if any(h.engine != engines.SYSTEM for h in inv.docker_hosts):
        print("  engines: " + ", ".join(f"{h.name} {h.engine}" for h in inv.docker_hosts)
              + " (`labctl engines` shows their versions and cluster-store backends)")
    if args.playbook:
        pb = load_playbook(args.playbook, inv)
        check_image_archives(pb)
        print(f"{pb.source}: ok ({len(pb.networks)} networks, {len(pb.containers)} containers, "
              f"store: {pb.store.url if pb.store else 'none'})")
        if needs_decision(pb):
            print(f"  overlay control plane: {CONTROL_RULES[pb.control]}")
        for net in pb.networks:
            if net.vni is not None:
                print(f"  {net.name}: VXLAN ID {net.vni} (device vxl{net.vni} on every docker host)")
        for net in pb.networks:
            for host, rng in net.host_ranges:
                print(f"  {net.name} ({net.driver}) on {host}: dynamic addresses from {rng}")
        for host, bip in sorted(pb.bips.items()):
            print(f"  docker0 on {host}: {bip}")
    if args.exercise:
        ex = load_exercise(args.exercise, inv)
        print(f"{ex.source}: ok ({len(ex.tasks)} tasks, {ex.max_points} points)")
    if args.roster:
        roster = load_roster(args.roster)
        print(f"{roster.source}: ok ({len(roster.students)} students)")
    return 0


def cmd_engines(args: argparse.Namespace, progress: Progress) -> int:
    rows = enginecache.describe()
    if args.json:
        print(json.dumps({"cache": enginecache.cache_root(), "engines": rows}, indent=2))
        return 0
    table = Table(title=f"engines (cache: {enginecache.cache_root()})", title_justify="left")
    for col in ("name", "kind", "version", "cluster store", "swarm", "cached"):
        table.add_column(col, no_wrap=col in ("name", "version", "kind"))
    for r in rows:
        known = r["cached"] is not False
        engine = r["kind"] == "engine"
        version = r["version"].replace("Docker version ", "").split(",")[0] if r["version"] else \
            ("(not fetched)" if not known else "-")
        backends = (" ".join(r["backends"]) or "none") if known else "?"
        swarm = ("yes" if r["swarm"] else "no") if known else "?"
        cached = "own" if r["cached"] is None else ("yes" if r["cached"] else "no")
        table.add_row(*map(escape, (r["name"], "engine" if engine else "store", version,
                                    backends if engine else "-", swarm if engine else "-", cached)))
    Console(highlight=False, emoji=False).print(table)
    notes = [f"{r['name']}: {helper} from {why}" for r in rows for helper, why in r["from_host"].items()]
    for note in notes:
        print(escape(note))
    if any(r["cached"] is False for r in rows):
        print("fetch one: labctl engines fetch NAME (sandbox hosts also fetch theirs at `labctl sandbox up`)")
    return 0


def cmd_engines_fetch(args: argparse.Namespace, progress: Progress) -> int:
    names = [r["name"] for r in enginecache.describe() if r["cached"] is not None]
    if args.name not in names:
        raise UsageError(f"unknown engine {args.name!r}; fetchable: {', '.join(names)}")
    if args.name in engines.names():
        unpacked = enginecache.fetch(args.name, progress)
    else:
        src = engines.store_tool_source(args.name)
        assert src is not None and src.release is not None
        unpacked = enginecache.fetch(args.name, progress, packages=src.store_tools[args.name], release=src.release,
                                     helpers=())
    print(f"{unpacked.name}: {unpacked.version} in {unpacked.directory}")
    for pkg, version in unpacked.packages.items():
        print(f"  {pkg} {version}")
    for helper, why in unpacked.from_host.items():
        print(f"  {helper}: {why}")
    return 0


def cmd_hosts(args: argparse.Namespace, progress: Progress) -> int:
    inv = load(args)
    if args.json:
        print(json.dumps({"lab": inv.name, "provider": inv.provider,
                          "hosts": [{**ep.as_dict(), "engine": inv.host(ep.name).engine}
                                    for ep in registry.endpoints(inv)]}, indent=2))
    else:
        print_hosts(inv)
    return 0


def ssh_argv(inv: Inventory, host: str, remote_command: Sequence[str]) -> list[str]:
    eps = {ep.name: ep for ep in registry.endpoints(inv)}
    if host not in eps:
        raise ValidationError([Problem(inv.source, "hosts", f"no host {host!r}; hosts: {', '.join(eps)}")])
    ep = eps[host]
    argv = ["ssh", "-p", str(ep.port), "-o", "StrictHostKeyChecking=yes" if ep.strict_host_keys else
            "StrictHostKeyChecking=accept-new"]
    if ep.key_file:
        argv += ["-i", os.path.expanduser(ep.key_file), "-o", "IdentitiesOnly=yes"]
    if ep.known_hosts:
        argv += ["-o", f"UserKnownHostsFile={os.path.expanduser(ep.known_hosts)}"]
    argv += ["--", f"{ep.user}@{ep.address}"]
    if remote_command:
        argv.append(" ".join(remote_command))  # as ssh itself does: the remote shell parses the words
    return argv


def cmd_ssh(args: argparse.Namespace, progress: Progress) -> int:
    inv = load(args)
    argv = ssh_argv(inv, args.host, args.remote_command)
    sys.stdout.flush()
    os.execvp(argv[0], argv)
    return 0  # not reached


def cmd_image_load(args: argparse.Namespace, progress: Progress) -> int:
    inv = load(args)
    image = archive_from_path(args.source, args.tag)
    names = [h.name for h in inv.docker_hosts]
    with Hosts(registry.endpoints(inv)) as hosts:
        loaded = dockerhost.load_images(hosts, names, image, progress)
    count = sum(loaded.values())
    print(f"image {image.tag or args.source}: loaded on {count} host(s), already present on {len(names) - count}")
    return 0


def run_lab(verb: str, args: argparse.Namespace, progress: Progress) -> int:
    """`up`, `down` or `provision`: validate inventory and playbook (exit 2 on bad input), then act on the hosts."""
    inv = load(args)
    pb = load_playbook(args.playbook, inv)
    check_image_archives(pb)
    t0 = time.monotonic()
    with Hosts(registry.endpoints(inv)) as hosts, \
            HostLocks(hosts, [h.name for h in inv.hosts], holder_for(pb.name, verb), args.wait, progress):
        if verb == "down":
            report = lab.down(inv, pb, hosts, progress)
        else:
            report = lab.Report()
            wanted = getattr(args, "provision", None)
            if verb == "provision" or (wanted if wanted is not None else inv.provider != "sandbox"):
                provision.provision(inv, pb, hosts, progress, report)
            if verb == "up":
                report.changes += lab.up(inv, pb, hosts, progress).changes
    print_report(verb, pb.name, report, time.monotonic() - t0)
    return 1 if report.skipped else 0


def check_image_archives(pb: Playbook) -> None:
    """The playbook's `images:` archives live on this machine: a missing one is bad input, found before any host."""
    problems = [Problem(pb.source, f"images.{ref}", f"{path} does not exist on this machine; give the path of a "
                        "`docker save` tar, a root filesystem tar or a directory (relative to the playbook)")
                for ref, path in pb.images if not os.path.exists(path)]
    if problems:
        raise ValidationError(problems)


def cmd_up(args: argparse.Namespace, progress: Progress) -> int:
    return run_lab("up", args, progress)


def cmd_down(args: argparse.Namespace, progress: Progress) -> int:
    return run_lab("down", args, progress)


def cmd_provision(args: argparse.Namespace, progress: Progress) -> int:
    return run_lab("provision", args, progress)


def cmd_verify(args: argparse.Namespace, progress: Progress) -> int:
    inv = load(args)
    pb = load_playbook(args.playbook, inv)
    with Hosts(registry.endpoints(inv)) as hosts:
        result = verify.verify(inv, pb, hosts, progress, sampled=args.sample, probe=args.probe)
        probe = {"modes": result.probe_modes, "notes": result.probe_notes, "reprobed": result.reprobed}
        if args.html:
            write_file(args.html, verdict_page(inv, pb, hosts, result, probe, progress))
    if args.json:
        data = verdict.to_json(pb.name, result.results, result.duration_s, probe)
        if args.json == "-":
            json.dump(data, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:   # streamed: at 16 x 20 the text alone would be some 100 MB held at once
            try:
                with open(args.json, "w", encoding="utf-8") as fh:
                    json.dump(data, fh, indent=2)
                    fh.write("\n")
            except OSError as exc:
                raise LabctlError(f"cannot write {args.json}: {exc.strerror}") from None
    if args.junit:
        write_file(args.junit, verdict.to_junit(pb.name, result.results, result.duration_s))
    if args.json != "-":
        print_verdict(result)
    return 0 if result.ok else 1


def cmd_grade(args: argparse.Namespace, progress: Progress) -> int:
    t0 = time.monotonic()
    if args.roster:
        roster = load_roster(args.roster)
        # bad input in the exercise: exit 2 before any host is asked
        exercises = {s.name: load_exercise(args.exercise, s.inventory) for s in roster.students}
        progress.step("all", f"grading {len(roster.students)} student(s) of {roster.name}, "
                             f"{grade_exec.STUDENTS_AT_ONCE} at a time")
        reports = grade_exec.grade_class(roster, exercises, args.probe, progress)
        write_grades(args, reports, gradebook.class_dict(roster.name, reports, time.monotonic() - t0))
        if args.json != "-":
            print_roster(roster.name, reports, time.monotonic() - t0)
        return 0 if all(r.error is None for r in reports) else 1
    inv = load(args)
    ex = load_exercise(args.exercise, inv)
    with Hosts(registry.endpoints(inv)) as hosts:
        report = grade_exec.grade(inv, ex, hosts, progress, args.probe)
    write_grades(args, [report], gradebook.report_dict(report))
    if args.json != "-":
        print_grade(report, args.details)
    return 0 if report.ok else 1


def write_grades(args: argparse.Namespace, reports: list, data: dict) -> None:
    if args.json == "-":
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.json:
        write_file(args.json, json.dumps(data, indent=2) + "\n")
    if args.junit:
        write_file(args.junit, gradebook.to_junit(reports))
    if args.csv:
        write_file(args.csv, gradebook.to_csv(reports))


def print_grade(report: grade_plan.Report, details: bool = False) -> None:
    console = Console(highlight=False, emoji=False, width=None if sys.stdout.isatty() else 200)
    ex = report.exercise
    console.print(f"grade {escape(ex.name)}: {escape(ex.title)} ({escape(report.inventory)})", soft_wrap=True)
    width = max((len(t.task.id) for t in report.results), default=4)
    for t in report.results:
        mark = "[green]PASS[/]" if t.ok else "[bold red]FAIL[/]"
        console.print(f"  {mark}  {escape(t.task.id.ljust(width))}  {t.points}/{t.task.points}  "
                      f"{escape(t.task.title)}", soft_wrap=True)
        for f in t.findings:
            if not f.ok or details:
                console.print(f"        {'-' if not f.ok else '+'} {escape(f.text)}", soft_wrap=True)
        if not t.ok and t.task.hint:
            console.print(f"        hint: {escape(t.task.hint)}", soft_wrap=True)
    failed = sum(not t.ok for t in report.results)
    state = "full marks" if report.ok else f"{failed} of {len(report.results)} task(s) failed"
    console.print(f"points: {report.points}/{report.max_points} ({state}) in {report.duration_s:.1f}s", soft_wrap=True)
    if report.unreachable:
        console.print("[bold red]not reachable[/]: " + escape("; ".join(f"{h}: {why}" for h, why in
                                                                        sorted(report.unreachable.items()))))
    if report.probe_modes:
        console.print(f"probes: {escape(verify.describe_modes(report.probe_modes, report.probe_notes))}",
                      soft_wrap=True)


def print_roster(name: str, reports: list[grade_plan.Report], seconds: float) -> None:
    header, rows = gradebook.roster_rows(reports)
    table = Table(title=f"class {name}: {reports[0].exercise.name if reports else ''} "
                        f"({len(reports)} students, {seconds:.1f}s)", title_justify="left")
    for col in header:
        table.add_column(escape(col), justify="right" if col not in ("student", "status") else "left")
    for row in rows:
        style = "red" if row[-1].startswith("unreachable") else ("green" if row[-1] == "full marks" else "")
        table.add_row(*[escape(x) for x in row], style=style)
    Console(highlight=False, emoji=False, width=None if sys.stdout.isatty() else 200).print(table)
    graded = [r for r in reports if r.error is None]
    print(f"graded {len(graded)} of {len(reports)} student(s)" + (
        f"; not reachable: {', '.join(r.student or '' for r in reports if r.error)}" if len(graded) < len(reports)
        else ""))


def cmd_break(args: argparse.Namespace, progress: Progress) -> int:
    if bool(args.undo) == bool(args.scenario):
        raise UsageError("give a scenario to inject, or --undo (not both)",
                         hint="`labctl list-scenarios` lists the scenarios")
    if args.undo and (args.host or args.container or args.network):
        raise UsageError("--undo takes no --host, --container or --network: it reverts what the hosts recorded")
    if args.scenario and args.scenario not in breaks_plan.SCENARIOS:
        raise UsageError(f"no scenario {args.scenario!r}; scenarios: {', '.join(breaks_plan.SCENARIOS)}",
                         hint="`labctl list-scenarios` describes them")
    inv = load(args)
    pb = load_playbook(args.playbook, inv)
    t0 = time.monotonic()
    with Hosts(registry.endpoints(inv)) as hosts, \
            HostLocks(hosts, [h.name for h in inv.hosts], holder_for(pb.name, "break"), args.wait, progress):
        if args.undo:
            done = breaks_exec.undo(inv, pb, hosts, progress)
            for line in done:
                print(f"  {line}")
            print(f"break --undo {pb.name}: " + ("reverted" if done else "no fault recorded on the hosts; nothing to "
                                                                        "undo") + f" ({time.monotonic() - t0:.1f}s)")
            return 0
        inj = breaks_exec.inject(inv, pb, hosts, args.scenario, progress, args.host, args.container, args.network)
    print(f"broke {pb.name} ({time.monotonic() - t0:.1f}s): {breaks_plan.describe(inj)}")
    print(f"  undo: labctl break --undo -i {inv.source} -p {pb.source}   (`labctl down` undoes it too)")
    return 0


def cmd_list_scenarios(args: argparse.Namespace, progress: Progress) -> int:
    if args.json:
        print(json.dumps([{"name": s.name, "summary": s.summary, "symptom": s.symptom, "needs": s.needs,
                           "options": s.options} for s in breaks_plan.SCENARIOS.values()], indent=2))
        return 0
    for s in breaks_plan.SCENARIOS.values():
        print(f"{s.name}\n  does:     {s.summary}\n  verify:   {s.symptom}\n  needs:    {s.needs}"
              + (f"\n  options:  {s.options}" if s.options else ""))
    return 0


def verdict_page(inv: Inventory, pb: Playbook, hosts: Hosts, result: verify.Verdict, probe: dict,
                 progress: Progress) -> str:
    """verify --html: the verdict plus the topology as it is now (an SVG when Graphviz is installed)."""
    progress.step("all", "topology for the HTML page")
    svg, note = None, ""
    try:
        svg = graph_exec.render(graph_exec.topology(inv, pb, hosts), "svg").decode()
    except LabctlError as exc:
        note = f"no picture: {exc.message}" + (f" ({exc.hint})" if exc.hint else "")
    return html.to_html(result.lab, result.results, result.duration_s, probe, svg, note)


def write_file(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise LabctlError(f"cannot write {path}: {exc.strerror}") from None


def print_verdict(result: verify.Verdict) -> None:
    console = Console(highlight=False, emoji=False, width=None if sys.stdout.isatty() else 200)
    style = {"reach": "green", "isolated": "blue", "MISMATCH": "bold red"}
    for title, (srcs, dsts, cells) in verdict.matrices(result.results).items():
        heading = f"{title}: rows reach (or not) columns"
        if len(dsts) > verdict.FOLD_OVER:
            srcs, dsts, cells = verdict.host_matrix(result.results, title)
            heading = f"{title}: per host pair (source host -> destination host), checks by outcome"
        table = Table(title=heading, title_justify="left")
        table.add_column("from \\ to")
        for d in dsts:
            table.add_column(escape(d))
        for s_ in srcs:
            row = [escape(s_)]
            for d in dsts:
                mark = cells.get((s_, d), "")
                row.append(f"[{style[mark.split()[0]]}]{escape(mark)}[/]" if mark else "")
            table.add_row(*row)
        console.print(table)
    failed = [r for r in result.results if not r.ok]
    for r in failed:
        c = r.check
        text = (f"{c.src} ({c.src_host}) -> {c.dst} ({c.dst_host or '-'}) on {c.network} via {c.via} "
                f"{c.address or '(no address)'}: expected {c.expect}, observed {r.observed}\n"
                f"    expected because: {c.reason}\n    likely cause: {r.cause}")
        console.print(f"[bold red]MISMATCH[/] {escape(text)}", soft_wrap=True)
    summary = verdict.verdict(result.results)
    kinds = sorted({r.check.expect for r in result.results})
    state = "OK" if result.ok else "FAILED"
    console.print(f"verify {escape(result.lab)}: {state}: {summary['passed']}/{summary['total']} checks as expected "
                  f"({', '.join(kinds) or 'none'}), {summary['failed']} mismatched, {result.duration_s:.1f}s"
                  + (" (sampled)" if result.sampled else ""), soft_wrap=True)
    console.print(f"probes: {escape(verify.describe_modes(result.probe_modes, result.probe_notes))}"
                  + (f"; {result.reprobed} check(s) probed again" if result.reprobed else ""), soft_wrap=True)


def cmd_graph(args: argparse.Namespace, progress: Progress) -> int:
    inv = load(args)
    pb = load_playbook(args.playbook, inv) if args.playbook else None
    with Hosts(registry.endpoints(inv)) as hosts:
        progress.step("all", "gathering hosts, networks and containers")
        topo = graph_exec.topology(inv, pb, hosts)
    data = graph_exec.render(topo, args.format)
    out = args.output or ("-" if args.format in ("dot", "mermaid") else f"{pb.name if pb else inv.name}.{args.format}")
    if out == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        try:
            with open(out, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            raise LabctlError(f"cannot write {out}: {exc.strerror}") from None
        print(f"graph {topo.title}: {out} ({args.format}, {len(data)} bytes)")
    return 0


def cmd_trace(args: argparse.Namespace, progress: Progress) -> int:
    inv = load(args)
    pb = load_playbook(args.playbook, inv) if args.playbook else None
    with Hosts(registry.endpoints(inv)) as hosts:
        result = trace_exec.trace(inv, pb, hosts, progress, args.src, args.dst, args.network, args.pcap, args.count)
    if args.json:
        print(json.dumps(trace_json(result), indent=2))
    else:
        print_trace(result)
    return 0 if result.ok else 1


def trace_json(r: trace_exec.TraceResult) -> dict:
    p = r.path
    return {"src": p.src, "dst": p.dst, "network": p.network, "kind": p.kind, "vni": p.vni, "control_plane": r.plane,
            "src_ip": p.src_ip, "dst_ip": p.dst_ip, "vteps": list(p.vteps) if p.vteps else None,
            "sent": r.sent, "received": r.received, "ok": r.ok,
            "hops": [vars(h) for h in p.hops],
            "captures": [{"name": s.point.name, "host": s.point.host, "interface": s.point.iface,
                          "in_container": bool(s.point.pid), "filter": s.point.bpf, "echo_requests": s.requests,
                          "echo_replies": s.replies,
                          "vxlan": [{"src": o[0], "dst": o[1], "port": o[2], "vni": o[3]} for o in s.outer]}
                         for s in r.seen],
            "proof": r.proof, "pcaps": r.pcaps, "notes": p.notes}


def print_trace(r: trace_exec.TraceResult) -> None:
    console = Console(highlight=False, emoji=False, width=None if sys.stdout.isatty() else 160)
    p = r.path
    what = {"overlay": f"overlay, VNI {p.vni}, control plane {r.plane or '?'}",
            "vxlan": f"overlay on labctl's VXLAN devices, VNI {p.vni}", "macvlan": "macvlan on the underlay",
            "bridge": "a bridge on one host", "nat": "out of the host through NAT",
            "routed": "through the container's gateway"}[p.kind]
    console.print(escape(f"trace {p.src} ({p.src_ip}) -> {p.dst} ({p.dst_ip}) on {p.network} ({what}): "
                         f"{r.received}/{r.sent} replies"), soft_wrap=True)
    seen = {s.point.name: s for s in r.seen}
    table = Table(show_header=True, header_style="bold")
    for col in ("#", "where", "interface", "MAC", "IP", "what happens", "captured"):
        table.add_column(col)
    for i, h in enumerate(p.hops, 1):
        s = seen.get(h.capture)
        cap = (f"{s.requests} request(s), {s.replies} reply(ies)"
               + "".join(f"; VXLAN {o[0]} > {o[1]}:{o[2]} VNI {o[3]}" for o in s.outer)) if s else ""
        table.add_row(str(i), *map(escape, (h.where, h.what, h.mac, h.ip, h.note, cap)))
    console.print(table)
    for line in r.proof + p.notes:
        console.print(escape(f"proof: {line}" if line in r.proof else line), soft_wrap=True)
    if r.pcaps:
        console.print(escape("captures kept (tcpdump -r FILE, or Wireshark): " + ", ".join(r.pcaps)), soft_wrap=True)
    if not r.ok:
        console.print(escape("no reply: " + " ".join(r.ping_output.split())[-300:]), soft_wrap=True)


def cmd_status(args: argparse.Namespace, progress: Progress) -> int:
    inv = load(args)
    pb = load_playbook(args.playbook, inv) if args.playbook else None
    with Hosts(registry.endpoints(inv)) as hosts:
        result = status.gather(inv, pb, hosts, store_contents=True)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_status(result)
    return 1 if any(h["error"] or h.get("state") for h in result["hosts"]) else 0


def print_status(result: dict) -> None:
    console = Console(highlight=False, emoji=False, width=None if sys.stdout.isatty() else 160)
    hosts = Table(title=escape(f"lab {result['lab'] or '(every labctl lab)'}: hosts"), title_justify="left")
    for col in ("host", "roles", "engine", "state"):
        hosts.add_column(col)
    for h in result["hosts"]:
        hosts.add_row(*map(escape, (h["name"], ",".join(h["roles"]), h["engine"] or "-",
                                    h["error"] or h.get("state") or "ok")))
    nets = Table(title="networks", title_justify="left")
    for col in ("network", "driver", "scope", "subnet", "gateway", "VNI", "hosts"):
        nets.add_column(col)
    for n in result["networks"]:
        nets.add_row(*map(escape, (n["name"], n["driver"] or "", n["scope"] or "", n["subnet"] or "",
                                   n["gateway"] or "", str(n["vni"]) if n["vni"] is not None else "-",
                                   ",".join(n["hosts"]))))
    ctrs = Table(title="containers", title_justify="left")
    for col in ("container", "host", "state", "addresses"):
        ctrs.add_column(col)
    for c in result["containers"]:
        addrs = ", ".join(f"{k}={v}" for k, v in c["addresses"].items() if v) or c["network_mode"] or "-"
        ctrs.add_row(*map(escape, (c["name"], c["host"], c["state"] or "", addrs)))
    for table in (hosts, nets, ctrs):
        console.print(table)
    control = result.get("control")
    if control:
        console.print(escape(control_line(control)))
    store = result.get("store")
    if store:
        state = store["error"] or ("running" if store["running"] else "not running")
        console.print(escape(f"store: {store['url']} on {store['host']}: {state}"))
        contents = store.get("contents")
        if contents and not contents.get("error"):
            console.print(escape(f"  leader {contents['leader'] or '(none)'}; registered engines: "
                                 f"{', '.join(contents['nodes']) or '(none)'}; overlays in the store: "
                                 f"{', '.join(store['overlays']) or '(none)'} ({contents['keys']} keys under docker/)"))
        elif contents:
            console.print(escape(f"  cannot read the store: {contents['error']}"))
    for line in result.get("missing", []):
        console.print(f"missing: {escape(line)}")
    for line in result.get("extra", []):
        console.print(f"extra: {escape(line)}")
    if result.get("missing") == [] and not result.get("extra"):
        console.print("everything in the playbook exists and runs, and nothing else of the lab")


def print_report(verb: str, name: str, report: lab.Report, seconds: float) -> None:
    for line in report.skipped:
        print(f"{verb} {name}: SKIPPED {line}")
    if report.skipped:
        print(f"{verb} {name}: incomplete: {len(report.skipped)} part(s) could not be touched (see above); run "
              f"`labctl {verb}` again once they are reachable")
    if report.changes:
        print(f"{verb} {name}: {len(report.changes)} change(s) in {seconds:.1f}s")
        for line in report.changes:
            print(f"  {line}")
    else:
        state = {"up": "everything was already as the playbook says", "down": "nothing of the lab was left",
                 "provision": "every host already has what the playbook needs"}[verb]
        print(f"{verb} {name}: no changes ({seconds:.1f}s): {state}")


HANDLERS = {
    ("up", None): cmd_up,
    ("down", None): cmd_down,
    ("provision", None): cmd_provision,
    ("sandbox", "up"): cmd_sandbox_up,
    ("sandbox", "down"): cmd_sandbox_down,
    ("sandbox", "list"): cmd_sandbox_list,
    ("destroy", None): cmd_sandbox_down,
    ("validate", None): cmd_validate,
    ("status", None): cmd_status,
    ("graph", None): cmd_graph,
    ("trace", None): cmd_trace,
    ("verify", None): cmd_verify,
    ("grade", None): cmd_grade,
    ("break", None): cmd_break,
    ("list-scenarios", None): cmd_list_scenarios,
    ("hosts", None): cmd_hosts,
    ("ssh", None): cmd_ssh,
    ("image", "load"): cmd_image_load,
    ("engines", None): cmd_engines,
    ("engines", "fetch"): cmd_engines_fetch,
}


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """argparse cannot mix options with a trailing command, so `labctl ssh ... -- CMD` is split here."""
    argv = list(argv)
    remote: list[str] = []
    if "ssh" in argv and "--" in argv[argv.index("ssh"):]:
        cut = argv.index("--", argv.index("ssh"))
        argv, remote = argv[:cut], argv[cut + 1:]
    args = build_parser().parse_args(argv)
    if remote:
        args.remote_command = list(args.remote_command) + remote
    return args


def show_help(args: argparse.Namespace) -> int:
    """`labctl` alone (exit 2: no command given) and `labctl help [COMMAND [ACTION]]` (exit 0)."""
    parser = build_parser()
    if args.command is None:
        sys.stdout.write(parser.format_help())
        return 2
    commands = {words: p for words, p, _ in walk(parser)}
    topic = tuple(args.topic)
    if topic and topic not in commands:
        raise UsageError(f"no command {' '.join(topic)!r}", hint="`labctl help` lists them")
    sys.stdout.write((commands[topic] if topic else parser).format_help())
    return 0


def resolve_files(args: argparse.Namespace) -> str | None:
    """Fill in the inventory and playbook the command line left out (`defaults`); the line that says which."""
    used = []
    if hasattr(args, "inventory") and not (getattr(args, "roster", None) and args.command in ("grade", "sandbox")):
        choice = defaults.resolve("inventory", args.inventory)
        args.inventory = choice.path
        used.append(choice.describe("inventory"))
    if hasattr(args, "playbook"):
        if getattr(args, "all_labs", False):
            if args.playbook:
                raise UsageError("--all-labs and --playbook exclude each other: choose one")
            used.append("no playbook (--all-labs)")
        else:
            choice = defaults.resolve("playbook", args.playbook)
            args.playbook = choice.path
            used.append(choice.describe("playbook"))
    return ", ".join(used) or None


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    progress = Progress(quiet=args.quiet)
    try:
        if args.command in (None, "help"):
            return show_help(args)
        sub = (getattr(args, "sandbox_command", None) or getattr(args, "image_command", None)
               or getattr(args, "engines_command", None))
        handler = HANDLERS[(args.command, sub)]
        used = resolve_files(args)
        if used:
            progress.note(f"labctl {args.command}{' ' + sub if sub else ''}: {used}")
        return handler(args, progress)
    except LabctlError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error of labctl's
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
