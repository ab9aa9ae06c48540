"""Break-and-fix scenarios: one named fault injected into a running lab for a student to diagnose, recorded on
the hosts so that `labctl break --undo` (and `down`) reverts it exactly.

Pure: given the playbook, the inventory and what the hosts showed (underlay addresses and MTUs, the containers'
state and addresses), plan_break returns the actions per host: the commands that inject the fault and the commands
that revert it. Every undo command is safe to run after a partial apply (a run killed half-way) and twice.
"""

from __future__ import annotations

import ipaddress
import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from labctl.errors import UsageError
from labctl.model.inventory import Inventory
from labctl.model.playbook import DEFAULT_BRIDGE, Attachment, Container, Playbook
from labctl.planes import traits

RECORD_DIR = "/var/lib/labctl/breaks"
STORE_STOP, STORE_START = "store:stop", "store:start"   # actions the executor performs with the lab's StoreRunner
LOWERED_MTU = 1400
IN_THE_WAY = "in-the-way"                               # the name of the wrong-subnet network
BREAK_LABEL = "labctl.break"


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str           # what is done
    symptom: str           # what verify shows afterwards
    needs: str             # which labs it applies to
    options: str = ""      # which of --host, --container, --network it takes


SCENARIOS = {s.name: s for s in (
    Scenario("vxlan-blocked", "drop VXLAN (UDP 4789) arriving at one docker host, with an iptables rule",
             "every check across hosts on an overlay to or from that host fails: 'VXLAN (UDP 4789) is dropped on "
             "HOST by its firewall' (swarm: 'swarm traffic is dropped on HOST')",
             "an overlay network with containers on two hosts", "--host (default: the last docker host)"),
    Scenario("store-stopped", "stop the cluster store, then restart one overlay container, which cannot rejoin",
             "the container's checks fail: 'C is not running ...: the cluster store does not answer'; containers "
             "that joined before keep working", "a playbook with a store (control plane kvstore)",
             "--container (default: the last container on an overlay)"),
    Scenario("mtu-lowered", f"lower one docker host's underlay MTU to {LOWERED_MTU}",
             "small pings still pass; the whole-packet checks across the overlay to and from that host fail: "
             "'underlay MTU 1400 on HOST is below the 1500 bytes ...'", "an overlay network across hosts",
             "--host (default: the last docker host)"),
    Scenario("container-stopped", "stop one container (docker stop)",
             "the checks that expect to reach it, or to reach from it, fail: 'C is not running (state: exited)'",
             "any lab with a container", "--container (default: the last container)"),
    Scenario("container-disconnected", "disconnect one container from one of its networks",
             "the container's checks on that network fail: 'C is not attached to NETWORK'",
             "a container on a network of the playbook", "--container, --network (default: the last container "
                                                         "and its first network)"),
    Scenario("wrong-subnet", "create a bridge network on one docker host whose subnet covers another host's "
                             "underlay address",
             "the overlay between the two hosts fails: 'HOST routes PEER's underlay address through br-... (network "
             f"{IN_THE_WAY}, subnet ...) instead of the underlay'", "an overlay network across hosts",
             "--host (default: the first docker host)"),
)}


@dataclass(frozen=True)
class Action:
    host: str
    apply: tuple[str, ...]     # shell commands, or STORE_STOP / STORE_START
    undo: tuple[str, ...]


@dataclass(frozen=True)
class Injection:
    scenario: str
    lab: str
    target: str                # what was broken, for people ("UDP 4789 on node2")
    actions: tuple[Action, ...]

    def record(self, step: int) -> str:
        """What is kept on actions[step]'s host before anything is done there: enough to undo it, in order."""
        a = self.actions[step]
        return json.dumps({"lab": self.lab, "scenario": self.scenario, "target": self.target, "step": step,
                           "undo": list(a.undo)}, sort_keys=True)


@dataclass(frozen=True)
class LabFacts:
    """What the hosts showed before the fault (status and the underlay)."""

    underlay: dict[str, tuple[str, int]]                     # docker host -> (address, MTU)
    state: dict[str, str] = field(default_factory=dict)      # container -> state
    addresses: dict[str, dict[str, str]] = field(default_factory=dict)   # container -> network -> address
    iface: str = "eth1"


Planner = Callable[[Playbook, LabFacts, list[str], str | None, str | None, str | None], Injection]


def record_path(lab: str) -> str:
    return f"{RECORD_DIR}/{lab}.json"


def write_record(lab: str, record: str) -> str:
    """Shell: keep the record (atomically; private)."""
    path = record_path(lab)
    return (f"umask 077; mkdir -p {RECORD_DIR} && printf '%s\\n' {shlex.quote(record)} > {shlex.quote(path)}.tmp "
            f"&& mv {shlex.quote(path)}.tmp {shlex.quote(path)}")


def parse_record(text: str) -> dict | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    ok = (isinstance(data, dict) and isinstance(data.get("undo"), list) and isinstance(data.get("step"), int)
          and all(isinstance(x, str) for x in data["undo"]))
    return data if ok else None


def plan_break(pb: Playbook, inv: Inventory, scenario: str, facts: LabFacts, host: str | None = None,
               container: str | None = None, network: str | None = None) -> Injection:
    """The actions for one scenario, or a UsageError (exit 2, nothing changed) saying why it does not apply."""
    if scenario not in SCENARIOS:
        raise UsageError(f"no scenario {scenario!r}; scenarios: {', '.join(SCENARIOS)}",
                         hint="`labctl list-scenarios` describes them")
    docker_hosts = [h.name for h in inv.docker_hosts]
    if host is not None and host not in docker_hosts:
        raise UsageError(f"--host {host!r} is not a docker host of {inv.source}; docker hosts: "
                         f"{', '.join(docker_hosts)}")
    if container is not None and container not in {c.name for c in pb.containers}:
        raise UsageError(f"--container {container!r} is not a container of {pb.source}")
    planner: dict[str, Planner] = {
        "vxlan-blocked": _vxlan_blocked, "store-stopped": _store_stopped, "mtu-lowered": _mtu_lowered,
        "container-stopped": _container_stopped, "container-disconnected": _container_disconnected,
        "wrong-subnet": _wrong_subnet}
    return planner[scenario](pb, facts, docker_hosts, host, container, network)


def _overlay_hosts(pb: Playbook) -> list[str]:
    """Docker hosts that run a container on an overlay, in playbook order."""
    hosts: list[str] = []
    for c in pb.containers:
        if any(pb.driver_of(a.network) == "overlay" for a in c.networks) and c.host not in hosts:
            hosts.append(c.host)
    return hosts


def _need_overlay_across(pb: Playbook, scenario: str) -> list[str]:
    hosts = _overlay_hosts(pb)
    if len(hosts) < 2:
        raise UsageError(f"{scenario} needs an overlay network with containers on two docker hosts; "
                         f"{pb.source} has {'none' if not hosts else 'them on ' + hosts[0] + ' only'}")
    return hosts


def _choose_host(host: str | None, candidates: list[str], last: bool = True) -> str:
    return host or candidates[-1 if last else 0]


def _vxlan_blocked(pb: Playbook, facts: LabFacts, docker_hosts: list[str], host: str | None, container: str | None,
                   network: str | None) -> Injection:
    target = _choose_host(host, _need_overlay_across(pb, "vxlan-blocked"))
    rule = (f"INPUT -p udp --dport 4789 -m comment --comment {shlex.quote(f'{BREAK_LABEL}={pb.name}')} -j DROP")
    return Injection("vxlan-blocked", pb.name, f"UDP 4789 dropped on {target}", (Action(
        target, (f"iptables -I {rule}",),
        # every copy goes (a run killed after the insert and re-run could have added two); bounded
        (f"for i in 1 2 3 4 5 6 7 8; do iptables -D {rule} 2>/dev/null || break; done",)),))


def _store_stopped(pb: Playbook, facts: LabFacts, docker_hosts: list[str], host: str | None, container: str | None,
                   network: str | None) -> Injection:
    if pb.store is None or (pb.control != "auto" and traits(pb.control).store != "required"):
        raise UsageError(f"store-stopped needs a cluster store (control plane kvstore); {pb.source} has "
                         f"{'none' if pb.store is None else 'control ' + pb.control}")
    c = _container(pb, container, facts, lambda x: any(pb.driver_of(a.network) == "overlay"
                                                       for a in x.networks), "on an overlay")
    q = shlex.quote(c.name)
    return Injection("store-stopped", pb.name, f"store on {pb.store.host} stopped, {c.name} restarted on {c.host}", (
        Action(pb.store.host, (STORE_STOP,), (STORE_START,)),
        # the restart fails while the store is down: Docker cannot join the container to the overlay again
        Action(c.host, (f"docker restart -t 1 {q} >/dev/null 2>&1 || true",), (f"docker start {q} >/dev/null",)),
    ))


def _mtu_lowered(pb: Playbook, facts: LabFacts, docker_hosts: list[str], host: str | None, container: str | None,
                 network: str | None) -> Injection:
    target = _choose_host(host, _need_overlay_across(pb, "mtu-lowered"))
    address, mtu = facts.underlay.get(target, ("", 0))
    if not mtu:
        raise UsageError(f"the MTU of {facts.iface} on {target} is not known: is the host up?")
    if mtu <= LOWERED_MTU:
        raise UsageError(f"{facts.iface} on {target} already has MTU {mtu}, not more than {LOWERED_MTU}")
    dev = shlex.quote(facts.iface)
    return Injection("mtu-lowered", pb.name, f"MTU of {facts.iface} on {target} lowered from {mtu} to {LOWERED_MTU}",
                     (Action(target, (f"ip link set dev {dev} mtu {LOWERED_MTU}",),
                             (f"ip link set dev {dev} mtu {int(mtu)}",)),))


def _container(pb: Playbook, name: str | None, facts: LabFacts, fits: Callable[[Container], bool],
               what: str) -> Container:
    if name is not None:
        c = pb.container(name)
        if not fits(c):
            raise UsageError(f"container {name} is not {what}")
    else:
        fitting = [c for c in pb.containers if fits(c)]
        if not fitting:
            raise UsageError(f"no container of {pb.source} is {what}")
        c = fitting[-1]
    if facts.state.get(c.name) != "running":
        raise UsageError(f"container {c.name} is {facts.state.get(c.name, 'absent')} on {c.host}, not running: bring "
                         "the lab up first (`labctl up`)")
    return c


def _container_stopped(pb: Playbook, facts: LabFacts, docker_hosts: list[str], host: str | None, container: str | None,
                       network: str | None) -> Injection:
    c = _container(pb, container, facts, lambda x: True, "in the lab")
    q = shlex.quote(c.name)
    return Injection("container-stopped", pb.name, f"{c.name} stopped on {c.host}", (
        Action(c.host, (f"docker stop -t 1 {q} >/dev/null",), (f"docker start {q} >/dev/null",)),))


def _container_disconnected(pb: Playbook, facts: LabFacts, docker_hosts: list[str], host: str | None,
                            container: str | None, network: str | None) -> Injection:
    def on_it(a: Attachment) -> bool:
        return a.network != DEFAULT_BRIDGE and (network is None or a.network == network)

    c = _container(pb, container, facts, lambda x: any(on_it(a) for a in x.networks),
                   f"on network {network}" if network else "on a playbook network")
    attachment = next(a for a in c.networks if on_it(a))
    address = facts.addresses.get(c.name, {}).get(attachment.network) or attachment.ip
    connect = ["docker", "network", "connect"] + (["--ip", address] if address else [])
    for alias in attachment.aliases:
        connect += ["--alias", alias]
    net, q = shlex.quote(attachment.network), shlex.quote(c.name)
    needle = shlex.quote(f'"{attachment.network}":')   # already attached (undo run twice): nothing to do
    attached = f"docker inspect -f '{{{{json .NetworkSettings.Networks}}}}' {q} | grep -qF {needle}"
    return Injection("container-disconnected", pb.name, f"{c.name} disconnected from {attachment.network} on {c.host}",
                     (Action(c.host, (f"docker network disconnect {net} {q}",),
                             (f"{attached} || {shlex.join([*connect, attachment.network, c.name])}",)),))


def _wrong_subnet(pb: Playbook, facts: LabFacts, docker_hosts: list[str], host: str | None, container: str | None,
                  network: str | None) -> Injection:
    hosts = _need_overlay_across(pb, "wrong-subnet")
    target = _choose_host(host, hosts, last=False)
    peer = next((h for h in hosts if h != target), None)
    if peer is None or not facts.underlay.get(peer, ("", 0))[0]:
        raise UsageError(f"wrong-subnet needs another docker host with an overlay container besides {target} and its "
                         "underlay address")
    peer_addr = ipaddress.ip_address(facts.underlay[peer][0])
    subnet = ipaddress.ip_network(f"{peer_addr}/30", strict=False)
    taken = {ipaddress.ip_address(a) for a, _ in facts.underlay.values() if a}
    gateway = next((a for a in subnet.hosts() if a not in taken), None)
    if gateway is None:
        raise UsageError(f"no free address next to {peer}'s {peer_addr} for the wrong network's gateway",
                         hint="choose another --host")
    name = shlex.quote(IN_THE_WAY)
    label = shlex.quote(f"{BREAK_LABEL}={pb.name}")
    return Injection("wrong-subnet", pb.name, f"network {IN_THE_WAY} ({subnet}) on {target} takes {peer}'s "
                                              f"address {peer_addr}", (
        Action(target, (f"docker network create --driver bridge --subnet {subnet} --gateway {gateway} --label {label} "
                        f"{name} >/dev/null",),
               (f"if docker network inspect -f '{{{{index .Labels \"{BREAK_LABEL}\"}}}}' {name} 2>/dev/null | "
                f"grep -qx {shlex.quote(pb.name)}; then docker network rm {name} >/dev/null; fi",)),))


def describe(inj: Injection) -> str:
    s = SCENARIOS[inj.scenario]
    return f"{inj.scenario}: {inj.target}\n  verify will show: {s.symptom}"
