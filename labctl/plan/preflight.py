"""Refusals before any change, from facts gathered on every host."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from labctl.model.playbook import Playbook


@dataclass(frozen=True)
class HostFacts:
    name: str
    engine_version: str       # "" when no docker
    engine_id: str
    hostname: str
    consul_backend: bool      # dockerd binary contains the Consul libkv backend
    interfaces: tuple[str, ...]


def engine_major(version: str) -> int:
    try:
        return int(version.split(".")[0])
    except ValueError:
        return 0


def preflight_problems(pb: Playbook, facts: dict[str, HostFacts]) -> list[str]:
    problems: list[str] = []
    for f in facts.values():
        if pb.store is not None and engine_major(f.engine_version) >= 23:
            problems.append(f"[{f.name}] Docker Engine {f.engine_version} has no cluster-store (removed in 23.0): "
                            "the classic overlay needs Engine <= 20.10; use swarm mode or Engine 20.10 on this host")
        if pb.store is not None and pb.store.backend == "consul" and not f.consul_backend:
            problems.append(f"[{f.name}] dockerd {f.engine_version} is built without the Consul backend (Debian's "
                            "docker.io has etcd and zookeeper only): use `store: {backend: etcd}`, or install "
                            "upstream Docker CE 20.10.24 binaries")
    by_id: dict[str, list[str]] = defaultdict(list)
    by_name: dict[str, list[str]] = defaultdict(list)
    for f in facts.values():
        if f.engine_id:
            by_id[f.engine_id].append(f.name)
        by_name[f.hostname].append(f.name)
    for engine_id, hosts in by_id.items():
        if len(hosts) > 1:
            problems.append(f"hosts {', '.join(hosts)} share Docker engine ID {engine_id} (cloned VMs): on each, "
                            "remove /etc/docker/key.json and restart docker")
    for hostname, hosts in by_name.items():
        if len(hosts) > 1:
            problems.append(f"hosts {', '.join(hosts)} share the hostname {hostname!r}: overlay membership (serf) "
                            "needs unique hostnames")
    for net in pb.networks:
        if net.driver != "macvlan":
            continue
        for h in net.hosts:
            if h in facts and net.parent not in facts[h].interfaces:
                problems.append(f"[{h}] macvlan network {net.name}: parent interface {net.parent!r} does not exist "
                                f"(interfaces: {', '.join(facts[h].interfaces)})")
    return problems
