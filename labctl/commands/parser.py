"""The argument parsers of every command (labctl's and, through labctl.fabtasks, fab's), grouped for `labctl help`."""

from __future__ import annotations

import argparse
import textwrap

from labctl import defaults
from labctl.executors import graph as graph_exec
from labctl.executors import verify

MAX_STUDENTS = 40
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


BECOME_HELP = ("ask for the sudo password of hosts with `ssh: {become: sudo}` (or set LABCTL_BECOME_PASS); it "
               "is sent only to sudo's prompt")


def build_parser() -> argparse.ArgumentParser:
    parser = TopParser(prog="labctl", description=TAGLINE)
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress lines, only the outcome")
    parser.add_argument("--ask-become-pass", "-K", action="store_true", help=BECOME_HELP)
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
        p.add_argument("--class", dest="roster", metavar="CLASS.yaml",
                       help=f"{name} the playbook's lab on every student's hosts of this class file, students in "
                            "parallel (instead of --inventory)")
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
    p.add_argument("--causes", choices=("show", "hide"), default="show",
                   help="show each failed check's likely cause (default), or hide it: for break-and-fix classes, "
                        "where finding the cause is the student's task (a fault from `break --class` whose class "
                        "file says `causes: hide` hides them in any case)")
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
    p.add_argument("--watch", type=float, metavar="SECONDS",
                   help="with --class: regrade every SECONDS until Ctrl-C, the terminal redrawn in place (the "
                        "--json/--csv/--junit files rewritten after each round)")
    p.add_argument("--serve", metavar="[ADDR:]PORT",
                   help="with --watch: serve the live class view as a page on ADDR:PORT (default address "
                        "127.0.0.1) instead of drawing it on the terminal")
    p.add_argument("--rounds", type=int, metavar="N", help="with --watch: stop after N rounds")

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
    p.add_argument("--class", dest="roster", metavar="CLASS.yaml",
                   help="every student of this class file: a scenario for all, --random, --undo or --list")
    p.add_argument("--random", action="store_true",
                   help="with --class: one scenario per student, neighbours in the class file differing, its host, "
                        "container or network drawn too")
    p.add_argument("--seed", type=int, help="with --random: the same seed gives the same draw (default: a new one, "
                                            "printed)")
    p.add_argument("--list", action="store_true", help="with --class: which fault each student's hosts record "
                                                       "(for the instructor)")

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
            subparser.add_argument("--ask-become-pass", "-K", action="store_true", default=argparse.SUPPRESS,
                                   help=BECOME_HELP)
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
