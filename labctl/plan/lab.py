"""Docker commands that bring a host to the playbook's networks and containers, given what exists there."""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import dataclass

from labctl.model.inventory import Inventory
from labctl.model.playbook import Container, Network, Playbook

LABEL = "labctl.lab"
SPEC_LABEL = "labctl.spec"
STOP_TIMEOUT = 1  # seconds: lab containers stop promptly (sleep as PID 1 ignores SIGTERM; --init handles it)
DEFAULT_COMMAND = ("sleep", "2147483647")


@dataclass(frozen=True)
class Step:
    host: str
    what: str                  # human-readable: "create network ov", "run c1"
    command: str | None        # None: nothing to do
    reason: str = ""
    entry: str = ""            # the playbook entry it serves: "networks.ov", "containers.c1"


def spec_hash(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def network_spec(net: Network, host: str) -> dict:
    return {"driver": net.driver, "subnet": str(net.subnet), "gateway": str(net.gateway or ""),
            "ip_range": net.range_for(host) or "", "bridge": net.bridge_name or "", "parent": net.parent or "",
            "mtu": net.mtu or 0, "options": list(net.options)}


def network_create(pb: Playbook, net: Network, host: str) -> str:
    argv = ["docker", "network", "create", "--driver", net.driver, "--subnet", str(net.subnet),
            "--label", f"{LABEL}={pb.name}", "--label", f"{SPEC_LABEL}={spec_hash(network_spec(net, host))}"]
    if net.gateway:
        argv += ["--gateway", str(net.gateway)]
    rng = net.range_for(host)
    if rng:
        argv += ["--ip-range", rng]
    if net.bridge_name:
        argv += ["--opt", f"com.docker.network.bridge.name={net.bridge_name}"]
    if net.parent:
        argv += ["--opt", f"parent={net.parent}"]
    if net.mtu:
        argv += ["--opt", f"com.docker.network.driver.mtu={net.mtu}"]
    for k, v in net.options:
        argv += ["--opt", f"{k}={v}"]
    argv.append(net.name)
    return shlex.join(argv)


def container_spec(c: Container) -> dict:
    return {"image": c.image, "command": list(c.command), "mode": c.network_mode,
            "networks": [[a.network, a.ip, list(a.aliases)] for a in c.networks], "ports": list(c.ports)}


def container_run(pb: Playbook, c: Container) -> str:
    """`docker run` plus one `docker network connect` per further network, as one shell command."""
    argv = ["docker", "run", "-d", "--name", c.name, "--init", "--stop-timeout", str(STOP_TIMEOUT),
            "--label", f"{LABEL}={pb.name}", "--label", f"{SPEC_LABEL}={spec_hash(container_spec(c))}"]
    if c.network_mode != "host" and not (c.network_mode or "").startswith("container:"):
        argv += ["--hostname", c.name]
    if c.network_mode:
        argv += ["--network", c.network_mode]
    first, rest = (c.networks[0], c.networks[1:]) if c.networks else (None, ())
    if first is not None:
        argv += ["--network", first.network]
        if first.ip:
            argv += ["--ip", first.ip]
        for alias in first.aliases:
            argv += ["--network-alias", alias]
    for p in c.ports:
        argv += ["--publish", p]
    argv.append(c.image)
    argv += list(c.command or DEFAULT_COMMAND)
    commands = [shlex.join(argv)]
    for a in rest:
        connect = ["docker", "network", "connect"]
        if a.ip:
            connect += ["--ip", a.ip]
        for alias in a.aliases:
            connect += ["--alias", alias]
        commands.append(shlex.join([*connect, a.network, c.name]))
    return " && ".join(commands)


def container_order(containers: tuple[Container, ...]) -> list[Container]:
    """Containers that share another's stack (container:<x>) start after x."""
    first = [c for c in containers if not (c.network_mode or "").startswith("container:")]
    return first + [c for c in containers if c not in first]


def _network_targets(net: Network, docker_hosts: list[str]) -> list[str]:
    return [docker_hosts[0]] if net.driver == "overlay" else list(net.hosts)


def changed_networks(pb: Playbook, inv: Inventory, existing: dict[str, dict[str, str]]) -> list[tuple[Network, str]]:
    """(network, host) pairs where the network exists with other settings and must be recreated."""
    docker_hosts = [h.name for h in inv.docker_hosts]
    result = []
    for net in pb.networks:
        for host in _network_targets(net, docker_hosts):
            have = existing.get(host, {}).get(net.name)
            if have is not None and have != spec_hash(network_spec(net, host)):
                result.append((net, host))
    return result


def plan_detach(pb: Playbook, inv: Inventory, existing: dict[str, dict[str, str]]) -> list[Step]:
    """Before a network is recreated, the lab's containers on it go (on every host that sees it), or Docker
    refuses with 'network has active endpoints'; the container plan that follows starts them again."""
    steps = []
    for net, host in changed_networks(pb, inv, existing):
        seen_on = [h for h, nets in existing.items() if net.name in nets] if net.driver == "overlay" else [host]
        for h in seen_on:
            cmd = (f"docker ps -aq --filter {shlex.quote(f'label={LABEL}={pb.name}')} "
                   f"--filter {shlex.quote(f'network={net.name}')} | xargs -r docker rm -f")
            steps.append(Step(h, f"containers on {net.name}", cmd, "removed: the network is recreated",
                              f"networks.{net.name}"))
    return steps


def plan_networks(pb: Playbook, inv: Inventory, existing: dict[str, dict[str, str]]) -> list[Step]:
    """existing: host -> {network name: spec label} of networks with this lab's label (overlay seen everywhere)."""
    steps: list[Step] = []
    docker_hosts = [h.name for h in inv.docker_hosts]
    for net in pb.networks:
        entry = f"networks.{net.name}"
        for host in _network_targets(net, docker_hosts):
            want = spec_hash(network_spec(net, host))
            have = existing.get(host, {}).get(net.name)
            if have == want:
                steps.append(Step(host, f"network {net.name}", None, "exists as described", entry))
            elif have is None:
                steps.append(Step(host, f"network {net.name}", network_create(pb, net, host),
                                  f"create {net.driver} {net.subnet}", entry))
            else:
                rm = shlex.join(["docker", "network", "rm", net.name])
                steps.append(Step(host, f"network {net.name}", f"{rm} && {network_create(pb, net, host)}",
                                  "settings changed: recreate", entry))
    return steps


def plan_containers(pb: Playbook, existing: dict[str, dict[str, tuple[str, bool]]]) -> list[Step]:
    """existing: host -> {container: (spec label, running)} for containers with this lab's label."""
    steps = []
    for c in container_order(pb.containers):
        want = spec_hash(container_spec(c))
        entry = f"containers.{c.name}"
        have = existing.get(c.host, {}).get(c.name)
        if have is None:
            steps.append(Step(c.host, f"container {c.name}", container_run(pb, c), "start", entry))
        elif have[0] != want:
            rm = shlex.join(["docker", "rm", "-f", c.name])
            steps.append(Step(c.host, f"container {c.name}", f"{rm} && {container_run(pb, c)}",
                              "settings changed: recreate", entry))
        elif not have[1]:
            steps.append(Step(c.host, f"container {c.name}", shlex.join(["docker", "start", c.name]),
                              "was stopped", entry))
        else:
            steps.append(Step(c.host, f"container {c.name}", None, "running as described", entry))
    return steps
