"""`labctl validate`: every input checked, no host touched; `--json` for tools."""

from __future__ import annotations

import argparse
import json

from labctl import engines, planes
from labctl.commands.common import check_image_archives, load
from labctl.errors import ValidationError
from labctl.model.class_roster import load_roster
from labctl.model.exercise import load_exercise
from labctl.model.playbook import load_playbook
from labctl.plan.controlplane import needs_decision
from labctl.ui import Progress

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
