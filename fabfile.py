"""Fabric tasks: `fab sandbox-up`, `fab sandbox-down`, `fab hosts`, ... Thin wrappers over the labctl CLI.

The inventory comes from --inventory or $LABCTL_INVENTORY (default inventories/sandbox.yaml).
"""

from __future__ import annotations

import os

from invoke import Exit, task

from labctl import cli


def _labctl(*argv: str) -> None:
    code = cli.main(list(argv))
    if code:
        raise Exit(code=code)


def _inv(inventory: str | None) -> str:
    return inventory or os.environ.get("LABCTL_INVENTORY", cli.DEFAULT_INVENTORY)


@task(help={"inventory": "inventory file"})
def sandbox_up(c, inventory=None):  # type: ignore[no-untyped-def]
    """Create or repair the sandbox hosts (idempotent)."""
    _labctl("sandbox", "up", "--inventory", _inv(inventory))


@task(help={"inventory": "inventory file"})
def sandbox_down(c, inventory=None):  # type: ignore[no-untyped-def]
    """Remove the sandbox hosts and every trace of them."""
    _labctl("sandbox", "down", "--inventory", _inv(inventory))


@task(help={"inventory": "inventory file", "json": "machine-readable output"})
def hosts(c, inventory=None, json=False):  # type: ignore[no-untyped-def]
    """Resolved SSH endpoints of the inventory's hosts."""
    _labctl("hosts", "--inventory", _inv(inventory), *(["--json"] if json else []))


@task(help={"inventory": "inventory file", "playbook": "playbook file (default $LABCTL_PLAYBOOK)"})
def validate(c, inventory=None, playbook=None):  # type: ignore[no-untyped-def]
    """Check the inventory (and the playbook) without touching any host."""
    playbook = playbook or os.environ.get("LABCTL_PLAYBOOK")
    _labctl("validate", "--inventory", _inv(inventory), *(["--playbook", playbook] if playbook else []))


@task(help={"inventory": "inventory file", "source": "rootfs dir, rootfs tar or docker-save tar", "tag": "image name"})
def image_load(c, source, inventory=None, tag=None):  # type: ignore[no-untyped-def]
    """Push an image to every docker host over SSH, in parallel."""
    _labctl("image", "load", "--inventory", _inv(inventory), source, *(["--tag", tag] if tag else []))


def _pb(playbook: str | None) -> list[str]:
    playbook = playbook or os.environ.get("LABCTL_PLAYBOOK")
    return ["--playbook", playbook] if playbook else []


@task(help={"inventory": "inventory file", "playbook": "playbook file (default $LABCTL_PLAYBOOK)",
            "provision": "yes/no: install Docker and the store first (default: yes on VMs and static hosts, "
                         "no on sandbox)", "wait": "seconds to wait for another run's host locks (default: refuse)"})
def up(c, inventory=None, playbook=None, provision=None, wait=None):  # type: ignore[no-untyped-def]
    """Bring the playbook's lab up (provision, store, daemon config, networks, containers); idempotent."""
    off = str(provision).lower() in ("no", "false", "0", "off")
    flag = [] if provision is None else ["--no-provision" if off else "--provision"]
    _labctl("up", "--inventory", _inv(inventory), *_pb(playbook), *flag, *_wait(wait))


def _wait(wait: str | None) -> list[str]:
    return ["--wait", str(wait)] if wait is not None else []


@task(help={"inventory": "inventory file", "playbook": "playbook file (default $LABCTL_PLAYBOOK)",
            "wait": "seconds to wait for another run's host locks (default: refuse)"})
def provision(c, inventory=None, playbook=None, wait=None):  # type: ignore[no-untyped-def]
    """Install what the playbook needs on the hosts (Docker per store backend, the store); idempotent."""
    _labctl("provision", "--inventory", _inv(inventory), *_pb(playbook), *_wait(wait))


@task(help={"inventory": "inventory file", "playbook": "playbook file (default $LABCTL_PLAYBOOK)",
            "wait": "seconds to wait for another run's host locks (default: refuse)"})
def down(c, inventory=None, playbook=None, wait=None):  # type: ignore[no-untyped-def]
    """Remove the lab: containers, networks, store keys, daemon config changes, the store labctl started."""
    _labctl("down", "--inventory", _inv(inventory), *_pb(playbook), *_wait(wait))


@task(help={"inventory": "inventory file", "playbook": "playbook file (default $LABCTL_PLAYBOOK)",
            "format": "svg (default), png, dot or mermaid", "output": "file to write ('-' for stdout)"})
def graph(c, inventory=None, playbook=None, format="svg", output=None):  # type: ignore[no-untyped-def]
    """Draw the lab as it exists (hosts, networks, containers, store), marked against the playbook."""
    _labctl("graph", "--inventory", _inv(inventory), *_pb(playbook), "--format", format,
            *(["--output", output] if output else []))


@task(help={"inventory": "inventory file", "playbook": "playbook file (default $LABCTL_PLAYBOOK)",
            "src": "source container", "dst": "destination container or IPv4 address",
            "network": "network to trace on", "pcap": "directory to keep the captures in", "count": "echoes (1-10)",
            "json": "machine-readable output"})
def trace(c, src, dst, inventory=None, playbook=None, network=None, pcap=None, count=3,  # type: ignore[no-untyped-def]
          json=False):
    """The path of one ping from SRC to DST through the hosts, proven by captures taken during it."""
    _labctl("trace", "--inventory", _inv(inventory), *_pb(playbook), src, dst,
            *(["--network", network] if network else []), *(["--pcap", pcap] if pcap else []),
            "--count", str(count), *(["--json"] if json else []))


@task(help={"inventory": "inventory file", "playbook": "playbook file (default $LABCTL_PLAYBOOK)",
            "json": "machine-readable output"})
def status(c, inventory=None, playbook=None, json=False):  # type: ignore[no-untyped-def]
    """What of the lab exists on each host: networks (scope, subnet, VNI), containers and their addresses."""
    _labctl("status", "--inventory", _inv(inventory), *_pb(playbook), *(["--json"] if json else []))


@task(help={"inventory": "inventory file", "playbook": "playbook file (default $LABCTL_PLAYBOOK)",
            "sample": "one pair per host pair and network", "json": "write the verdict as JSON to this file",
            "junit": "write a JUnit XML file", "probe": "auto (default), fping or container",
            "html": "write a self-contained HTML page of the verdict"})
def verify(c, inventory=None, playbook=None, sample=False, json=None, junit=None,  # type: ignore[no-untyped-def]
           probe="auto", html=None):
    """Probe who reaches whom across hosts and compare with the playbook; exit 1 on any mismatch."""
    _labctl("verify", "--inventory", _inv(inventory), *_pb(playbook), *(["--sample"] if sample else []),
            *(["--json", json] if json else []), *(["--junit", junit] if junit else []), "--probe", probe,
            *(["--html", html] if html else []))


def _opt(flag: str, value: str | None) -> list[str]:
    return [flag, value] if value else []


@task(help={"exercise": "exercise file (exercises/*.yaml)", "inventory": "inventory file (one student's lab)",
            "roster": "class file (student -> inventory): grade every student at once",
            "json": "write the grade as JSON to this file", "junit": "write one JUnit testcase per task",
            "csv": "write the roster as CSV", "details": "also list what passed", "probe": "auto, fping or container"})
def grade(c, exercise, inventory=None, roster=None, json=None, junit=None, csv=None,  # type: ignore[no-untyped-def]
          details=False, probe="auto"):
    """Grade an exercise done by hand: the hosts' real objects and reachability against its tasks (read-only)."""
    _labctl("grade", "--exercise", exercise, *(["--class", roster] if roster else ["--inventory", _inv(inventory)]),
            *_opt("--json", json), *_opt("--junit", junit), *_opt("--csv", csv), *(["--details"] if details else []),
            "--probe", probe)


@task(name="break", help={"scenario": "the fault to inject (fab list-scenarios)", "undo": "revert the recorded fault",
                          "inventory": "inventory file", "playbook": "playbook file (default $LABCTL_PLAYBOOK)",
                          "host": "docker host to break", "container": "container to break",
                          "network": "network (container-disconnected)"})
def break_(c, scenario=None, undo=False, inventory=None, playbook=None, host=None,  # type: ignore[no-untyped-def]
           container=None, network=None):
    """Inject one named fault into the running lab for a student to diagnose; --undo reverts it exactly."""
    _labctl("break", "--inventory", _inv(inventory), *_pb(playbook), *([scenario] if scenario else []),
            *(["--undo"] if undo else []), *_opt("--host", host), *_opt("--container", container),
            *_opt("--network", network))


@task
def list_scenarios(c):  # type: ignore[no-untyped-def]
    """The faults `fab break` can inject, and what verify then shows."""
    _labctl("list-scenarios")


@task(help={"json": "machine-readable output", "fetch": "an engine (or consul) to fetch from Debian's archive"})
def engines(c, json=False, fetch=None):  # type: ignore[no-untyped-def]
    """Docker engines a host can run (inventory `engine:`): version, cluster-store backends, swarm, cached."""
    if fetch:
        _labctl("engines", "fetch", fetch)
    else:
        _labctl("engines", *(["--json"] if json else []))
