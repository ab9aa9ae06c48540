"""What every break-and-fix scenario shares: the injection it plans (actions per host, each with its undo), the
facts it plans from, the record kept on the hosts, and the helpers that choose a host or a container (pure)."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from labctl.errors import UsageError
from labctl.facts import Fact, fact
from labctl.facts.host import Underlay
from labctl.model.playbook import Container, Playbook

RECORD_DIR = "/var/lib/labctl/breaks"
STORE_STOP, STORE_START = "store:stop", "store:start"   # actions the executor performs with the lab's StoreRunner
LOWERED_MTU = 1400
IN_THE_WAY = "in-the-way"                               # the name of the wrong-subnet network


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
    causes: str = "show"       # what verify shows of this fault (a class file's `causes: hide`)

    def record(self, step: int) -> str:
        """What is kept on actions[step]'s host before anything is done there: enough to undo it, in order."""
        a = self.actions[step]
        return json.dumps({"lab": self.lab, "scenario": self.scenario, "target": self.target, "step": step,
                           "undo": list(a.undo), "causes": self.causes}, sort_keys=True)


@dataclass(frozen=True)
class LabFacts:
    """What the hosts showed before the fault (status and the underlay)."""

    underlay: dict[str, Underlay]                            # docker host -> its address and MTU
    state: dict[str, str] = field(default_factory=dict)      # container -> state
    addresses: dict[str, dict[str, str]] = field(default_factory=dict)   # container -> network -> address
    iface: str = "eth1"


Planner = Callable[[Playbook, LabFacts, list[str], str | None, str | None, str | None], Injection]


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str           # what is done
    symptom: str           # what verify shows afterwards
    needs: str             # which labs it applies to
    options: str           # which of --host, --container, --network it takes
    plan: Planner          # (playbook, facts, docker hosts, --host, --container, --network) -> the injection


def record_path(lab: str) -> str:
    return f"{RECORD_DIR}/{lab}.json"


def write_record(lab: str, record: str) -> str:
    """Shell: keep the record (atomically; private)."""
    path = record_path(lab)
    return (f"umask 077; mkdir -p {RECORD_DIR} && printf '%s\\n' {shlex.quote(record)} > {shlex.quote(path)}.tmp "
            f"&& mv {shlex.quote(path)}.tmp {shlex.quote(path)}")


def record_fact(lab: str) -> Fact[dict | None]:
    """The host's record of a fault injected into this lab (None: no record, or one that cannot be read)."""
    return fact("break.record", f"cat {shlex.quote(record_path(lab))} 2>/dev/null",
                lambda t: parse_record(t) if t.strip() else None)


def parse_record(text: str) -> dict | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    ok = (isinstance(data, dict) and isinstance(data.get("undo"), list) and isinstance(data.get("step"), int)
          and all(isinstance(x, str) for x in data["undo"]))
    return data if ok else None


def overlay_hosts(pb: Playbook) -> list[str]:
    """Docker hosts that run a container on an overlay, in playbook order."""
    hosts: list[str] = []
    for c in pb.containers:
        if any(pb.driver_of(a.network) == "overlay" for a in c.networks) and c.host not in hosts:
            hosts.append(c.host)
    return hosts


def need_overlay_across(pb: Playbook, scenario: str) -> list[str]:
    hosts = overlay_hosts(pb)
    if len(hosts) < 2:
        raise UsageError(f"{scenario} needs an overlay network with containers on two docker hosts; "
                         f"{pb.source} has {'none' if not hosts else 'them on ' + hosts[0] + ' only'}")
    return hosts


def choose_host(host: str | None, candidates: list[str], last: bool = True) -> str:
    return host or candidates[-1 if last else 0]


def running_container(pb: Playbook, name: str | None, facts: LabFacts, fits: Callable[[Container], bool],
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


