"""Preflight's facts of a docker host in one SSH round trip: the engine, its ID, hostname, interfaces, daemon.json,
what other labs have there, images, addresses, and every control plane's own facts (labctl.planes)."""

from __future__ import annotations

from typing import Any

from fabric import Connection

from labctl.executors.facts import ask
from labctl.executors.services import remember_init
from labctl.facts import Answers, Fact, answers, docker, host
from labctl.plan.preflight import HostFacts
from labctl.planes.base import PlanePlan
from labctl.planes.registry import plan_halves

# ---------------------------------------------------------------- facts

PREFLIGHT = (docker.ENGINE_VERSION, docker.ENGINE_ID, host.HOSTNAME, docker.CONSUL_BACKEND, host.INTERFACES,
             host.DAEMON, docker.NETWORK_OWNERS, docker.CONTAINER_OWNERS, docker.IMAGES, host.BACKUP,
             host.ADDRESSES, host.INIT)


def fact_planes() -> dict[str, PlanePlan]:
    return {n: p for n, p in plan_halves().items() if p.facts_script}


def preflight_facts() -> list[Fact[Any]]:
    """What preflight asks every docker host: the facts above, then every control plane's own."""
    return [*PREFLIGHT, *(p.fact for p in fact_planes().values())]


def host_facts(conn: Connection, name: str, lab: str) -> HostFacts:
    """Everything preflight needs from one host, in one SSH round trip (its init, for the service manager, too)."""
    a = ask(conn, name, preflight_facts())
    remember_init(conn, a[host.INIT])
    return from_answers(a, lab)


def from_answers(a: Answers, lab: str) -> HostFacts:
    """Preflight's answers as HostFacts; lab: whose objects are not foreign."""
    conf, backup = a[host.DAEMON], a[host.BACKUP]
    return HostFacts(name=a.host, engine_version=a[docker.ENGINE_VERSION], engine_id=a[docker.ENGINE_ID],
                     hostname=a[host.HOSTNAME], consul_backend=a[docker.CONSUL_BACKEND],
                     interfaces=a[host.INTERFACES], daemon_json=conf.config, daemon_json_error=conf.problem,
                     foreign_networks={n: subnets for n, (owner, subnets) in a[docker.NETWORK_OWNERS].items()
                                       if owner != lab},
                     foreign_containers=tuple(c for c, owner in a[docker.CONTAINER_OWNERS].items() if owner != lab),
                     images=a[docker.IMAGES], daemon_owner=backup.owner, has_backup=backup.present,
                     addresses=a[host.ADDRESSES],
                     planes={n: a[p.fact] for n, p in fact_planes().items()})


def parse_facts(out: str, name: str, lab: str) -> HostFacts:
    """A host's output of preflight's script (captured) as HostFacts."""
    return from_answers(answers(name, preflight_facts(), out), lab)
