"""`labctl up`, `down` and `provision`: the lab brought up or removed, under the hosts' locks."""

from __future__ import annotations

import argparse
import time

from labctl.commands.common import check_image_archives, load
from labctl.errors import Problem, ValidationError
from labctl.executors import classlab, lab, provision
from labctl.executors.hostlock import HostLocks, holder_for
from labctl.executors.remote import Hosts
from labctl.model.class_roster import load_roster
from labctl.model.inventory import Inventory
from labctl.model.playbook import Playbook, load_playbook
from labctl.providers import registry
from labctl.ui import Progress
from labctl.views.lab import print_class_report, print_report


def run_lab(verb: str, args: argparse.Namespace, progress: Progress) -> int:
    """`up`, `down` or `provision`: validate inventory and playbook (exit 2 on bad input), then act on the hosts."""
    if getattr(args, "roster", None):
        return run_class_lab(verb, args, progress)
    inv = load(args)
    pb = load_playbook(args.playbook, inv)
    check_image_archives(pb)
    t0 = time.monotonic()
    report = apply(verb, inv, pb, args, progress)
    print_report(verb, pb.name, report, time.monotonic() - t0, args.quiet)
    return 1 if report.skipped else 0


def apply(verb: str, inv: Inventory, pb: Playbook, args: argparse.Namespace, progress: Progress) -> lab.Report:
    """The lab of one inventory, under its hosts' locks."""
    with Hosts(registry.endpoints(inv)) as hosts, \
            HostLocks(hosts, [h.name for h in inv.hosts], holder_for(pb.name, verb), args.wait, progress):
        if verb == "down":
            return lab.down(inv, pb, hosts, progress)
        report = lab.Report()
        wanted = getattr(args, "provision", None)
        if verb == "provision" or (wanted if wanted is not None else registry.provider(inv).provisions_by_default):
            provision.provision(inv, pb, hosts, progress, report)
        if verb == "up":
            done = lab.up(inv, pb, hosts, progress)
            report.changes += done.changes
            report.repairs += done.repairs
        return report


def run_class_lab(verb: str, args: argparse.Namespace, progress: Progress) -> int:
    """`up --class` / `down --class`: every student's inventory and the playbook validated against each first
    (all problems together, exit 2, nothing touched), then every student's lab, in parallel."""
    roster = load_roster(args.roster)
    playbooks: dict[str, Playbook] = {}
    problems: list[Problem] = []
    for s in roster.students:
        try:
            playbooks[s.name] = load_playbook(args.playbook, s.inventory)
            check_image_archives(playbooks[s.name])
        except ValidationError as exc:
            problems += [p for p in exc.problems if p not in problems]
    if problems:
        raise ValidationError(problems)
    t0 = time.monotonic()
    progress.step("all", f"{verb}: {len(roster.students)} student lab(s) of {roster.name}, "
                         f"{classlab.students_at_once(roster)} at a time")
    outcomes = classlab.run_class(verb, roster, playbooks, lambda inv, pb, quiet: apply(verb, inv, pb, args, quiet),
                                  progress)
    print_class_report(verb, roster.name, outcomes, time.monotonic() - t0, args.quiet)
    return 0 if all(o.ok for o in outcomes) else 1


def cmd_up(args: argparse.Namespace, progress: Progress) -> int:
    return run_lab("up", args, progress)


def cmd_down(args: argparse.Namespace, progress: Progress) -> int:
    return run_lab("down", args, progress)


def cmd_provision(args: argparse.Namespace, progress: Progress) -> int:
    return run_lab("provision", args, progress)
