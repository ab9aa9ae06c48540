"""What `down` removes of a lab's own Docker objects, from what each docker host shows (pure): the lab's
containers on every host at once, then its networks host by host (an overlay is one network seen on every host:
the first host that removes it removes it everywhere, and later hosts find it gone), then docker_gwbridge where
nothing uses it any more. The control planes' teardown, daemon.json and the store come after (executors.lab.down).

Every Docker command is bounded (`timeout`). A dockerd that stops answering must not hang `down`: seen here, two
dockerds restarted while in a swarm kept the lab's overlay "leaving" for good and `docker network rm` never
returned. A network whose removal times out is reported as skipped (down then exits non-zero, naming it) and down
goes on: a swarm's `leave` removes the swarm's networks with it."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from labctl.facts import Fact, fact
from labctl.plan.lab import LABEL, Step

DOCKER_TIMEOUT_S = 60          # one Docker command on one object
REMOVE_CONTAINERS_TIMEOUT_S = 300   # `docker rm -f` of all the lab's containers of a host (20 per host in the bench)
SKIPPED_PREFIX = "labctl-skipped: "      # what a step could not do: executors.steps puts it in the report's skipped
GWBRIDGE = "docker_gwbridge"


@dataclass(frozen=True)
class DownFacts:
    host: str
    containers: tuple[str, ...] = ()                 # the lab's containers (names)
    networks: tuple[tuple[str, str], ...] = ()       # the lab's networks as (name, driver)


def _pairs(text: str) -> tuple[tuple[str, str], ...]:
    found = []
    for line in text.splitlines():
        name, _, driver = line.partition("\t")
        if name.strip():
            found.append((name.strip(), driver.strip()))
    return tuple(found)


def down_facts(lab: str) -> tuple[Fact[tuple[str, ...]], Fact[tuple[tuple[str, str], ...]]]:
    label = shlex.quote(f"label={LABEL}={lab}")
    return (fact("down.containers", f"timeout {DOCKER_TIMEOUT_S} docker ps -a --filter {label} --format "
                                    "'{{.Names}}'", lambda t: tuple(t.split())),
            fact("down.networks", f"timeout {DOCKER_TIMEOUT_S} docker network ls --filter {label} --format "
                                  "'{{.Name}}\t{{.Driver}}'", _pairs))


def remove_containers(f: DownFacts) -> Step | None:
    if not f.containers:
        return None
    names = " ".join(shlex.quote(c) for c in f.containers)
    said = shlex.quote(f"labctl-report: {len(f.containers)} container(s) removed")
    return Step(f.host, f"{len(f.containers)} container(s)",
                f"timeout {REMOVE_CONTAINERS_TIMEOUT_S} docker rm -f {names} >/dev/null && echo {said}", "removing",
                reports=True)


def remove_network(host: str, name: str) -> Step:
    """Removed if it is still there (an overlay may be gone already, removed from an earlier host). Docker's
    refusal is not fatal, as it never was: a swarm's worker cannot remove a swarm network, which the manager
    removes, or the swarm's `leave` after. A dockerd that does not answer in time is reported, not waited for."""
    q, t = shlex.quote(name), f"timeout {DOCKER_TIMEOUT_S}"
    said = shlex.quote(f"network {name} removed")
    stuck = shlex.quote(f"{SKIPPED_PREFIX}network {name}: dockerd did not remove it within {DOCKER_TIMEOUT_S} s "
                        "(run `labctl down` again; if it stays, restart dockerd on this host)")
    return Step(host, f"network {name}", (
        f"{t} docker network inspect {q} >/dev/null 2>&1 || exit 0; {t} docker network rm {q} >/dev/null; rc=$?; "
        f"if [ $rc = 0 ]; then echo labctl-report: {said}; elif [ $rc = 124 ]; then echo {stuck}; fi; true"),
        "removing it if it is still there", f"networks.{name}", reports=True)


def remove_gwbridge(host: str) -> Step:
    """docker_gwbridge, which Docker made for the lab's overlay containers, once no container uses it."""
    t = f"timeout {DOCKER_TIMEOUT_S}"
    return Step(host, f"network {GWBRIDGE}", (
        f"n=$({t} docker network inspect {GWBRIDGE} --format '{{{{len .Containers}}}}' 2>/dev/null); "
        f"if [ \"$n\" = 0 ] && {t} docker network rm {GWBRIDGE} >/dev/null 2>&1; then "
        f"echo 'labctl-report: network {GWBRIDGE} removed (Docker made it for the overlay)'; fi; true"),
        "removing it if nothing uses it", reports=True)


@dataclass(frozen=True)
class DownPlan:
    containers: list[Step]        # every host at once
    networks: list[Step]          # host by host, in this order (overlay removal must not race between hosts)


def plan_down(facts: dict[str, DownFacts], order: list[str]) -> DownPlan:
    """order: the docker hosts down can reach, in the inventory's order."""
    containers = [s for h in order if h in facts and (s := remove_containers(facts[h])) is not None]
    networks: list[Step] = []
    for h in order:
        if h not in facts:
            continue
        networks += [remove_network(h, name) for name, _driver in facts[h].networks]
        networks.append(remove_gwbridge(h))   # also after a run killed between the networks and this step
    return DownPlan(containers, networks)
