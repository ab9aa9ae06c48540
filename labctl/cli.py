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

from labctl import defaults, engines, gradebook, html, planes, verdict
from labctl.errors import LabctlError, Problem, UsageError, ValidationError
from labctl.executors import breaks as breaks_exec
from labctl.executors import dockerhost, enginecache, lab, provision, status, verify
from labctl.executors import grade as grade_exec
from labctl.executors import graph as graph_exec
from labctl.executors import trace as trace_exec
from labctl.executors.hostlock import HostLocks, holder_for
from labctl.executors.images import archive_from_path, busybox_rootfs
from labctl.executors.remote import ROUND_TRIPS, Hosts
from labctl.model.class_roster import Student, load_roster
from labctl.model.exercise import load_exercise
from labctl.model.inventory import Inventory, load_inventory
from labctl.model.playbook import Playbook, load_playbook
from labctl.plan import breaks as breaks_plan
from labctl.plan.controlplane import needs_decision
from labctl.providers import class_sandbox, registry, sandbox
from labctl.ui import Progress
from labctl.views.engines import print_engines
from labctl.views.grade import print_grade, print_roster
from labctl.views.lab import print_hosts, print_report, print_status
from labctl.views.trace import print_trace
from labctl.views.verdict import print_verdict

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
    p.add_argument("--json", action="store_true",
                   help="machine-readable: the files checked and every problem with its file, field and category")

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
        raise ValidationError([Problem(inv.source, "provider", message, "conflict")])


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
    manager = registry.service_manager(inv)
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
    if not progress.quiet:
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


AUTO_RULE = ("auto: kvstore (the playbook's store) when every docker host's engine can use it, else swarm; "
             "decided by `up` from the engines, which `validate` does not ask")


def control_rule(control: str) -> str:
    return AUTO_RULE if control == "auto" else planes.traits(control).summary


def cmd_validate(args: argparse.Namespace, progress: Progress) -> int:
    if args.json:
        return validate_json(args)
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
            print(f"  overlay control plane: {control_rule(pb.control)}")
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


def validate_json(args: argparse.Namespace) -> int:
    """`validate --json`: {"ok", "checked": [{kind, source}], "problems": [{source, field, category, message}]};
    exit 2 with problems. Like the text form it stops at the first file with problems (the others need it)."""
    checked: list[dict[str, str]] = []
    problems: list[dict[str, str]] = []
    try:
        inv = load(args)
        checked.append({"kind": "inventory", "source": inv.source})
        if args.playbook:
            pb = load_playbook(args.playbook, inv)
            check_image_archives(pb)
            checked.append({"kind": "playbook", "source": pb.source})
        if args.exercise:
            checked.append({"kind": "exercise", "source": load_exercise(args.exercise, inv).source})
        if args.roster:
            checked.append({"kind": "class", "source": load_roster(args.roster).source})
    except ValidationError as exc:
        problems = [p.as_dict() for p in exc.problems]
    print(json.dumps({"ok": not problems, "checked": checked, "problems": problems}, indent=2))
    return 2 if problems else 0


def cmd_engines(args: argparse.Namespace, progress: Progress) -> int:
    rows = enginecache.describe()
    if args.json:
        print(json.dumps({"cache": enginecache.cache_root(), "engines": rows}, indent=2))
        return 0
    print_engines(rows, enginecache.cache_root())
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
            if verb == "provision" or (wanted if wanted is not None else registry.provider(inv).provisions_by_default):
                provision.provision(inv, pb, hosts, progress, report)
            if verb == "up":
                report.changes += lab.up(inv, pb, hosts, progress).changes
    print_report(verb, pb.name, report, time.monotonic() - t0, args.quiet)
    return 1 if report.skipped else 0


def check_image_archives(pb: Playbook) -> None:
    """The playbook's `images:` archives live on this machine: a missing one is bad input, found before any host."""
    problems = [Problem(pb.source, f"images.{ref}", f"{path} does not exist on this machine; give the path of a "
                        "`docker save` tar, a root filesystem tar or a directory (relative to the playbook)", "missing")
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
        print_verdict(result, args.quiet)
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
            print_roster(roster.name, reports, time.monotonic() - t0, args.quiet)
        return 0 if all(r.error is None for r in reports) else 1
    inv = load(args)
    ex = load_exercise(args.exercise, inv)
    with Hosts(registry.endpoints(inv)) as hosts:
        report = grade_exec.grade(inv, ex, hosts, progress, args.probe)
    write_grades(args, [report], gradebook.report_dict(report))
    if args.json != "-":
        print_grade(report, args.details, args.quiet)
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
        print_trace(result, args.quiet)
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


def cmd_status(args: argparse.Namespace, progress: Progress) -> int:
    inv = load(args)
    pb = load_playbook(args.playbook, inv) if args.playbook else None
    with Hosts(registry.endpoints(inv)) as hosts:
        result = status.gather(inv, pb, hosts, store_contents=True)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_status(result, args.quiet)
    return 1 if any(h["error"] or h.get("state") for h in result["hosts"]) else 0


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
        try:
            return handler(args, progress)
        finally:
            if os.environ.get("LABCTL_ROUND_TRIPS"):
                print(f"round trips per host: {ROUND_TRIPS.describe()}", file=sys.stderr)
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
