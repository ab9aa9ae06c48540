"""Docker commands that bring a host to the playbook's networks and containers, given what exists there."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import shlex
from dataclasses import dataclass

from labctl.model.inventory import Inventory
from labctl.model.playbook import Attachment, Container, Network, Playbook

LABEL = "labctl.lab"
SPEC_LABEL = "labctl.spec"
RECIPE_LABEL = "labctl.recipe"   # the spec itself (JSON): what a rollback recreates when Docker refuses a change
STOP_TIMEOUT = 1  # seconds: lab containers stop promptly (sleep as PID 1 ignores SIGTERM; --init handles it)
DEFAULT_COMMAND = ("sleep", "2147483647")


@dataclass(frozen=True)
class Step:
    host: str
    what: str                  # human-readable: "create network ov", "run c1"
    command: str | None        # None: nothing to do
    reason: str = ""
    entry: str = ""            # the playbook entry it serves: "networks.ov", "containers.c1"
    cleanup: str | None = None  # run when the command fails: remove what it half-made
    reports: bool = False       # the command prints its own changes (labctl-report: lines); none printed: no change


@dataclass(frozen=True)
class Existing:
    """A lab object found on a host: its spec hash, and its recipe (the spec as JSON; "" when an older labctl made
    it without one)."""

    spec: str
    recipe: str = ""
    running: bool = True


def spec_hash(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def network_spec(net: Network, host: str) -> dict:
    spec = {"driver": net.driver, "subnet": str(net.subnet), "gateway": str(net.gateway or ""),
            "ip_range": net.range_for(host) or "", "bridge": net.bridge_name or "", "parent": net.parent or "",
            "mtu": net.mtu or 0, "options": list(net.options)}
    if net.attachable:  # only then: the specs (and hashes) of cluster-store overlays stay as they were
        spec["attachable"] = True
    return spec


def recipe(spec: dict) -> str:
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def network_create(pb: Playbook, net: Network, host: str) -> str:
    spec = network_spec(net, host)
    argv = ["docker", "network", "create", "--driver", net.driver, "--subnet", str(net.subnet),
            "--label", f"{LABEL}={pb.name}", "--label", f"{SPEC_LABEL}={spec_hash(spec)}",
            "--label", f"{RECIPE_LABEL}={recipe({'name': net.name, **spec})}"]
    if net.attachable:
        argv.append("--attachable")
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
    spec = container_spec(c)
    argv = ["docker", "run", "-d", "--name", c.name, "--init", "--stop-timeout", str(STOP_TIMEOUT),
            "--label", f"{LABEL}={pb.name}", "--label", f"{SPEC_LABEL}={spec_hash(spec)}",
            "--label", f"{RECIPE_LABEL}={recipe({'name': c.name, 'host': c.host, **spec})}"]
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


def stale_endpoints(pb: Playbook, c: Container) -> str:
    """Force-disconnect `c` from its overlay networks. A `docker run` that fails after joining an overlay (a port in
    use, say) leaves the endpoint in the cluster store; every later run of that name then fails with 'endpoint with
    name c1 already exists in network ov' (seen here). A no-op when there is none."""
    overlays = [a.network for a in c.networks if a.network in {n.name for n in pb.networks if n.driver == "overlay"}]
    return "".join(f"docker network disconnect -f {shlex.quote(n)} {shlex.quote(c.name)} >/dev/null 2>&1; "
                   for n in overlays)


def container_order(containers: tuple[Container, ...]) -> list[Container]:
    """Containers that share another's stack (container:<x>) start after x."""
    first = [c for c in containers if not (c.network_mode or "").startswith("container:")]
    return first + [c for c in containers if c not in first]


def _network_targets(net: Network, docker_hosts: list[str]) -> list[str]:
    return [docker_hosts[0]] if net.driver == "overlay" else list(net.hosts)


def changed_networks(pb: Playbook, inv: Inventory,
                     existing: dict[str, dict[str, Existing]]) -> list[tuple[Network, str]]:
    """(network, host) pairs where the network exists with other settings and must be recreated."""
    docker_hosts = [h.name for h in inv.docker_hosts]
    result = []
    for net in pb.networks:
        for host in _network_targets(net, docker_hosts):
            have = existing.get(host, {}).get(net.name)
            if have is not None and have.spec != spec_hash(network_spec(net, host)):
                result.append((net, host))
    return result


def plan_detach(pb: Playbook, inv: Inventory, existing: dict[str, dict[str, Existing]]) -> list[Step]:
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


def plan_networks(pb: Playbook, inv: Inventory, existing: dict[str, dict[str, Existing]]) -> list[Step]:
    """existing: host -> {network name: spec label} of networks with this lab's label (overlay seen everywhere)."""
    steps: list[Step] = []
    docker_hosts = [h.name for h in inv.docker_hosts]
    for net in pb.networks:
        entry = f"networks.{net.name}"
        for host in _network_targets(net, docker_hosts):
            want = spec_hash(network_spec(net, host))
            found = existing.get(host, {}).get(net.name)
            have = found.spec if found is not None else None
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


def plan_containers(pb: Playbook, existing: dict[str, dict[str, Existing]]) -> list[Step]:
    """existing: host -> {container: what is there} for containers with this lab's label."""
    steps = []
    for c in container_order(pb.containers):
        want = spec_hash(container_spec(c))
        entry = f"containers.{c.name}"
        have = existing.get(c.host, {}).get(c.name)
        rm = shlex.join(["docker", "rm", "-f", c.name])
        # A `docker run` that fails after creating the container (a port in use, a `network connect` refused)
        # leaves it with the new spec label; it goes, so that the next `up` does not take it as done.
        stale = stale_endpoints(pb, c)
        cleanup = f"{rm} >/dev/null 2>&1; {stale}true"
        if have is None:
            steps.append(Step(c.host, f"container {c.name}", stale + container_run(pb, c), "start", entry, cleanup))
        elif have.spec != want:
            steps.append(Step(c.host, f"container {c.name}", f"{rm} && {stale}{container_run(pb, c)}",
                              "settings changed: recreate", entry, cleanup))
        elif not have.running:
            steps.append(Step(c.host, f"container {c.name}", shlex.join(["docker", "start", c.name]),
                              "was stopped", entry))
        else:
            steps.append(Step(c.host, f"container {c.name}", None, "running as described", entry))
    return steps


# ---------------------------------------------------------------- drift: the lab's objects the playbook no longer has


def _wanted_networks(pb: Playbook, host: str) -> set[str]:
    return {n.name for n in pb.networks if n.driver == "overlay" or host in n.hosts}


def extra_objects(pb: Playbook, nets: dict[str, dict[str, Existing]],
                  ctrs: dict[str, dict[str, Existing]]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(host, network) and (host, container) pairs labelled with this lab that the playbook does not have there."""
    wanted_ctrs = {(c.host, c.name) for c in pb.containers}
    extra_nets = [(h, n) for h, found in sorted(nets.items()) for n in sorted(found)
                  if n not in _wanted_networks(pb, h)]
    extra_ctrs = [(h, n) for h, found in sorted(ctrs.items()) for n in sorted(found) if (h, n) not in wanted_ctrs]
    return extra_nets, extra_ctrs


def plan_drift(pb: Playbook, nets: dict[str, dict[str, Existing]],
               ctrs: dict[str, dict[str, Existing]]) -> tuple[list[Step], list[Step]]:
    """Steps that remove what the playbook no longer has: containers first, with the lab's containers still attached
    to a network that goes (the container plan starts those again), then the networks. An overlay is listed on
    every host: each host removes it or finds it gone, so the removal holds whichever host comes first."""
    extra_nets, extra_ctrs = extra_objects(pb, nets, ctrs)
    ctr_steps = [Step(h, f"container {n}", shlex.join(["docker", "rm", "-f", n]), "not in the playbook: removed",
                      f"containers.{n}") for h, n in extra_ctrs]
    net_steps = []
    label = shlex.quote(f"label={LABEL}={pb.name}")
    for h, n in extra_nets:
        attached = f"docker ps -aq --filter {label} --filter {shlex.quote(f'network={n}')} | xargs -r docker rm -f"
        ctr_steps.append(Step(h, f"containers on {n}", attached, "removed: their network is not in the playbook",
                              f"networks.{n}"))
        q = shlex.quote(n)
        net_steps.append(Step(h, f"network {n}", f"docker network rm {q} >/dev/null 2>&1 || "
                                                 f"! docker network inspect {q} >/dev/null 2>&1",
                              "not in the playbook: removed", f"networks.{n}"))
    return ctr_steps, net_steps


# ---------------------------------------------------------------- rollback from the recorded specs


def network_from_recipe(text: str) -> Network | None:
    """The Network a recipe label describes (its per-host range as the ip_range), or None when there is none."""
    try:
        r = json.loads(text)
        return Network(name=str(r["name"]), driver=str(r["driver"]), subnet=ipaddress.IPv4Network(r["subnet"]),
                       gateway=ipaddress.IPv4Address(r["gateway"]) if r["gateway"] else None,
                       ip_range=ipaddress.IPv4Network(r["ip_range"]) if r["ip_range"] else None, hosts=(),
                       bridge_name=r["bridge"] or None, parent=r["parent"] or None, mtu=int(r["mtu"]) or None,
                       options=tuple((str(k), str(v)) for k, v in r["options"]), attachable=bool(r.get("attachable")))
    except (ValueError, TypeError, KeyError):
        return None


def container_from_recipe(text: str) -> Container | None:
    try:
        r = json.loads(text)
        return Container(name=str(r["name"]), host=str(r["host"]), image=str(r["image"]),
                         command=tuple(str(a) for a in r["command"]),
                         networks=tuple(Attachment(str(n), ip or None, tuple(str(a) for a in aliases))
                                        for n, ip, aliases in r["networks"]),
                         network_mode=r["mode"] or None, ports=tuple(str(p) for p in r["ports"]))
    except (ValueError, TypeError, KeyError):
        return None


def plan_restore(pb: Playbook, before_nets: dict[str, dict[str, Existing]], before_ctrs: dict[str, dict[str, Existing]],
                 after_nets: dict[str, dict[str, Existing]], after_ctrs: dict[str, dict[str, Existing]]
                 ) -> tuple[list[Step], list[str]]:
    """After Docker refused a change: the steps that bring back, from their recipes, the lab's networks and
    containers that existed before the run's changes and are now gone or different; and what cannot come back
    (made by an older labctl, without a recipe)."""
    steps: list[Step] = []
    lost: list[str] = []
    created: set[str] = set()
    for host, found in sorted(before_nets.items()):
        for name, old in sorted(found.items()):
            now = after_nets.get(host, {}).get(name)
            if (now is not None and now.spec == old.spec) or name in created:
                continue
            net = network_from_recipe(old.recipe)
            if net is None:
                lost.append(f"network {name} on {host} (no recorded spec)")
                continue
            if net.driver == "overlay":
                created.add(name)
            rm = f"docker network rm {shlex.quote(name)} >/dev/null 2>&1; " if now is not None else ""
            steps.append(Step(host, f"network {name}", rm + network_create(pb, net, host), "restored as it was",
                              f"networks.{name}"))
    olds: dict[str, tuple[Container, bool]] = {}
    for host, found in sorted(before_ctrs.items()):
        for name, old in sorted(found.items()):
            now = after_ctrs.get(host, {}).get(name)
            if now is not None and now.spec == old.spec:
                continue
            c = container_from_recipe(old.recipe)
            if c is None:
                lost.append(f"container {name} on {host} (no recorded spec)")
            else:
                olds[c.name] = (c, old.running)
    for c in container_order(tuple(c for c, _ in olds.values())):
        rm = shlex.join(["docker", "rm", "-f", c.name])
        stop = "" if olds[c.name][1] else f" && docker stop {shlex.quote(c.name)}"
        steps.append(Step(c.host, f"container {c.name}",
                          f"{rm} >/dev/null 2>&1; {stale_endpoints_of(c)}{container_run(pb, c)}{stop}",
                          "restored as it was", f"containers.{c.name}"))
    return steps, lost


def stale_endpoints_of(c: Container) -> str:
    """stale_endpoints for a container rebuilt from its recipe, whose overlay networks the playbook may no longer
    name: every network it was on (a disconnect from a local network it is not on does nothing)."""
    return "".join(f"docker network disconnect -f {shlex.quote(a.network)} {shlex.quote(c.name)} >/dev/null 2>&1; "
                   for a in c.networks)
