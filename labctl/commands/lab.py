"""`labctl up`, `down` and `provision`: the lab brought up or removed, under the hosts' locks."""

from __future__ import annotations

import argparse
import time

from labctl.commands.common import check_image_archives, load
from labctl.executors import lab, provision
from labctl.executors.hostlock import HostLocks, holder_for
from labctl.executors.remote import Hosts
from labctl.model.playbook import load_playbook
from labctl.providers import registry
from labctl.ui import Progress
from labctl.views.lab import print_report


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


def cmd_up(args: argparse.Namespace, progress: Progress) -> int:
    return run_lab("up", args, progress)


def cmd_down(args: argparse.Namespace, progress: Progress) -> int:
    return run_lab("down", args, progress)


def cmd_provision(args: argparse.Namespace, progress: Progress) -> int:
    return run_lab("provision", args, progress)
