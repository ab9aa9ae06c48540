"""`labctl sandbox up/down/list` (and `destroy`): sandbox hosts on this machine, one lab or a class of them."""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor

from labctl.commands.common import load, require_sandbox
from labctl.commands.parser import MAX_STUDENTS
from labctl.errors import LabctlError, UsageError
from labctl.executors import dockerhost
from labctl.executors.images import busybox_rootfs
from labctl.executors.remote import Hosts
from labctl.model.class_roster import Student, load_roster
from labctl.model.inventory import Inventory
from labctl.providers import class_sandbox, registry, sandbox
from labctl.ui import Progress
from labctl.views.lab import print_hosts

CLASS_LABS_AT_ONCE = 4     # sandbox labs brought up together (each starts a dockerd per docker host)


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
