"""Refusals before any change, from facts gathered on every host."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from labctl.facts import dialect
from labctl.model.inventory import Inventory
from labctl.model.playbook import Playbook


@dataclass(frozen=True)
class HostFacts:
    name: str
    engine_version: str       # "" when no docker
    engine_id: str
    hostname: str
    consul_backend: bool      # dockerd binary contains the Consul libkv backend
    interfaces: tuple[str, ...]
    daemon_json: dict = field(default_factory=dict)   # /etc/docker/daemon.json ({} when absent)
    daemon_json_error: str = ""                       # why /etc/docker/daemon.json cannot be used ("" when fine)
    foreign_networks: dict[str, tuple[str, ...]] = field(default_factory=dict)  # not this lab's: name -> subnets
    foreign_containers: tuple[str, ...] = ()           # container names not labelled with this lab
    images: frozenset[str] = frozenset()                # "repository:tag" present on the host
    daemon_owner: str = ""                              # lab whose up changed daemon.json and has not been downed
    has_backup: bool = False                            # labctl's backup of the original values exists
    addresses: dict[str, tuple[str, ...]] = field(default_factory=dict)  # interface -> IPv4 addresses on it
    # plane name -> what its pure half parsed from its facts_script, gathered in the same round trip
    planes: dict[str, Any] = field(default_factory=dict)


def engine_major(version: str) -> int:
    try:
        return int(version.split(".")[0])
    except ValueError:
        return 0


def preflight_problems(pb: Playbook, facts: dict[str, HostFacts]) -> list[str]:
    problems: list[str] = []
    # Whether the engines can carry the overlay (cluster store or swarm) is plan.controlplane's decision.
    by_id: dict[str, list[str]] = defaultdict(list)
    by_name: dict[str, list[str]] = defaultdict(list)
    for f in facts.values():
        if f.engine_id:
            by_id[f.engine_id].append(f.name)
        by_name[f.hostname].append(f.name)
    for engine_id, hosts in by_id.items():
        if len(hosts) > 1:
            problems.append(f"hosts {', '.join(hosts)} share Docker engine ID {engine_id} (cloned VMs): on each, "
                            f"remove {dialect.engine_id_fix()} and restart docker")
    for hostname, hosts in by_name.items():
        if len(hosts) > 1:
            problems.append(f"hosts {', '.join(hosts)} share the hostname {hostname!r}: overlay membership (serf) "
                            "needs unique hostnames")
    for net in pb.networks:
        if net.driver != "macvlan" or net.vni is not None:  # vni: its parent is labctl's VXLAN device, made later
            continue
        for h in net.hosts:
            if h in facts and net.parent not in facts[h].interfaces:
                problems.append(f"[{h}] macvlan network {net.name}: parent interface {net.parent!r} does not exist "
                                f"(interfaces: {', '.join(facts[h].interfaces)})")
    for f in facts.values():
        if f.daemon_owner and f.daemon_owner != pb.name:
            problems.append(f"[{f.name}] the host is in use by lab {f.daemon_owner!r} (its `up` changed daemon.json; "
                            "two labs would fight over the store and docker0): run `labctl down` with that lab's "
                            "playbook first, or use other hosts")
        if f.daemon_json_error:
            problems.append(f"[{f.name}] /etc/docker/daemon.json {f.daemon_json_error}: fix or remove it "
                            "(labctl merges its keys into it and must be able to read it)")
        problems += _collisions(pb, f)
    return problems


NAT_HINT = {"10.0.2.15": "VirtualBox's NAT address, the same on every VM"}


def underlay_problems(inv: Inventory, facts: dict[str, HostFacts]) -> list[str]:
    """The underlay interface must hold the address the inventory gives the host (cluster-advertise announces that
    interface's address; a VM's NAT or management interface would announce an address the others cannot reach)."""
    problems = []
    for f in facts.values():
        want = inv.host(f.name).address if f.name in {h.name for h in inv.hosts} else None
        if not f.addresses or not want or not _is_ip(want):
            continue
        have = f.addresses.get(inv.underlay_interface, ())
        if want in have:
            continue
        where = [f"{i} has {a}" + (f" ({NAT_HINT[a]})" if a in NAT_HINT else "")
                 for i, addrs in sorted(f.addresses.items()) for a in addrs if i != "lo"]
        problems.append(f"[{f.name}] underlay interface {inv.underlay_interface} does not have the inventory's "
                        f"address {want} ({'; '.join(where) or 'no IPv4 addresses'}): set underlay.interface to the "
                        "interface of the hosts' shared network (Vagrant: the private network, eth1), or fix the "
                        "host's address in the inventory")
    return problems


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _collisions(pb: Playbook, f: HostFacts) -> list[str]:
    """What Docker would refuse half-way: names taken by objects outside the lab, subnets already in use."""
    problems = []
    wanted_nets = [n for n in pb.networks if n.driver == "overlay" or f.name in n.hosts]
    for net in wanted_nets:
        if net.name in f.foreign_networks:
            problems.append(f"[{f.name}] networks.{net.name}: a network named {net.name!r} already exists there "
                            f"and is not this lab's (Docker would say 'network with name {net.name} already "
                            f"exists'): remove it (`docker network rm {net.name}`) or rename the playbook's network")
        for other, subnets in f.foreign_networks.items():
            if other == net.name or (other == "bridge" and f.name in pb.bips):
                continue  # docker0 gets the playbook's bip, checked against the lab's networks already
            for sub in subnets:
                if _overlaps(str(net.subnet), sub):
                    problems.append(f"[{f.name}] networks.{net.name}: subnet {net.subnet} overlaps network "
                                    f"{other!r} ({sub}) that exists there (Docker would say 'Pool overlaps with "
                                    f"other one on this address space'): choose another subnet or remove {other!r}")
    for c in pb.containers:
        if c.host == f.name and c.name in f.foreign_containers:
            problems.append(f"[{f.name}] containers.{c.name}: a container named {c.name!r} already exists there and "
                            f"is not this lab's: remove it (`docker rm -f {c.name}`) or rename the playbook's "
                            "container")
    return problems


def _overlaps(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_network(a, strict=False).overlaps(ipaddress.ip_network(b, strict=False))
    except (ValueError, TypeError):
        return False
