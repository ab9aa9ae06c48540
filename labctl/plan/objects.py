"""Every network and container of a docker host as Docker shows them (`docker network inspect` and `docker inspect`
JSON), asked as facts in one SSH round trip: grade reads all of them (students make theirs by hand); status reads
the lab's, by label, through the same facts (labctl.plan.status). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from labctl.facts import Answers, Fact, docker, host


def object_facts(label_filter: str = "") -> list[Fact[Any]]:
    """label_filter "": every network and container of the host."""
    return [host.RESTART_PENDING, docker.objects(label_filter)]


@dataclass(frozen=True)
class HostObjects:
    engine: str                              # the engine's version ("" when dockerd does not answer)
    networks: dict[str, dict[str, Any]]      # name -> `docker network inspect` JSON
    containers: dict[str, dict[str, Any]]    # name -> `docker inspect` JSON
    pending: bool = False                    # labctl's restart journal is there: a dockerd restart was begun

    def container_by_id(self, ident: str) -> str | None:
        return next((n for n, c in self.containers.items() if str(c.get("Id", "")).startswith(ident)), None)


def objects_from(a: Answers, label_filter: str = "") -> HostObjects:
    """One host's answers to object_facts(label_filter)."""
    found = a[docker.objects(label_filter)]
    return HostObjects(engine=found.version, networks=found.networks, containers=found.containers,
                       pending=a[host.RESTART_PENDING])
