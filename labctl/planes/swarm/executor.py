"""Swarm mode on the docker hosts: facts, bootstrap (init on the first host, join on the others), teardown.

The pure side (what counts as ours, refusals, the commands) is labctl.planes.swarm.plan."""

from __future__ import annotations

import time

from fabric import Connection

from labctl.errors import LabctlError
from labctl.executors.facts import ask
from labctl.executors.remote import Hosts
from labctl.planes.executor_base import ControlPlane, Run
from labctl.planes.swarm import plan as swarm
from labctl.planes.swarm.plan import SwarmFacts
from labctl.ui import Progress

READY_TIMEOUT = 60


class Swarm(ControlPlane):
    """Active: a swarm of the docker hosts, the first one its manager. Inactive: a swarm this lab (or another) made
    on these hosts is refused: the other planes do not work beside it, and only `down` leaves it."""

    name = "swarm"

    def __init__(self) -> None:
        self.facts: dict[str, SwarmFacts] = {}

    def preflight(self, run: Run, active: bool) -> list[str]:
        # gathered with preflight
        self.facts = {n: f.planes["swarm"] for n, f in run.facts.items() if f.planes.get("swarm") is not None}
        if active:
            return swarm.problems(run.pb, self.facts, run.names[0]) + [
                f"[{n}] /etc/docker/daemon.json has live-restore: swarm mode refuses to run with it; remove it there"
                for n, f in run.facts.items() if f.daemon_json.get("live-restore") is True]
        return [(f"[{n}] is still in the swarm this lab made when its playbook said `control: swarm`: run "
                 "`labctl down` first (it leaves that swarm), then `up`") if f.marker_lab == run.pb.name else
                (f"[{n}] is in the swarm of lab {f.marker_lab!r}: run `labctl down` with that lab's playbook "
                 "first, or use other hosts")
                for n, f in self.facts.items() if f.marker_lab and f.state != "inactive"]

    def join(self, run: Run, active: bool) -> None:
        if active:
            run.report.changes += ensure(run.pb.name, run.hosts, run.names, run.addresses, self.facts, run.progress)

    def diagnose(self, run: Run) -> swarm.SwarmDiagnosis:
        return swarm.diagnosis(gather(run.hosts, run.names))

    def down_begin(self, run: Run) -> None:
        """Hosts in this lab's swarm whose dockerd was just (re)started (down starts a stopped one first) are waited
        for, bounded, until their swarm node is active again: removing the lab's containers and overlay while it
        still initialises left the overlay "leaving" for good in one run here, and `docker network rm` never
        returned."""
        facts = gather(run.hosts, run.names)
        ours = [n for n, f in facts.items() if f.marker_lab == run.pb.name and f.state != "active"]
        if not ours:
            return
        run.progress.step(",".join(ours), f"waiting (at most {swarm.NODE_ACTIVE_TRIES // 2} s) for the swarm node "
                                          "to be active again before removing anything")
        run.hosts.each(lambda n, c: c.run(swarm.WAIT_NODE_ACTIVE, hide=True, warn=True), ours, step="swarm node")

    def teardown(self, run: Run) -> None:
        run.report.changes += leave(run.pb.name, run.hosts, run.names, run.progress)


def gather(hosts: Hosts, names: list[str]) -> dict[str, SwarmFacts]:
    facts = swarm.PLANE.fact
    return hosts.each(lambda n, c: ask(c, n, [facts])[facts], names, step="swarm facts")


def _run(conn: Connection, host: str, command: str, what: str) -> None:
    res = conn.run(command, hide=True, warn=True)
    if not res.ok:
        tail = (str(res.stderr).strip() or str(res.stdout).strip())[-400:]
        raise LabctlError(f"[{host}] {what} failed: {tail}",
                          hint="swarm needs 2377/tcp, 7946/tcp+udp and 4789/udp open between the docker hosts")


def ensure(lab: str, hosts: Hosts, names: list[str], addresses: dict[str, str], facts: dict[str, SwarmFacts],
           progress: Progress) -> list[str]:
    """A swarm of exactly these hosts, the first one its manager; returns the changes made ("host: what")."""
    changes: list[str] = []
    manager, workers = names[0], names[1:]
    mgr = hosts.conn(manager)
    if facts[manager].state != "active":
        if facts[manager].state not in ("", "inactive"):  # ours, half-made by a killed run: start over
            mgr.run(swarm.LEAVE, hide=True, warn=True)
        progress.step(manager, f"swarm init on {addresses[manager]} (manager; advertise, listen and data path on "
                               "the underlay)")
        mgr.run(swarm.record(lab, "manager"), hide=True)
        _run(mgr, manager, swarm.init_command(addresses[manager]), "docker swarm init")
        changes.append(f"{manager}: swarm created (manager)")
    joining = [w for w in workers if not _member(facts[w], addresses[manager], fresh=bool(changes))]
    if joining:
        token = str(mgr.run("docker swarm join-token -q worker", hide=True).stdout).strip()

        def join(name: str, conn: Connection) -> None:
            if facts[name].state not in ("", "inactive"):
                conn.run(swarm.LEAVE, hide=True, warn=True)
            progress.step(name, f"swarm join {addresses[manager]}:{swarm.MANAGER_PORT} (worker)")
            conn.run(swarm.record(lab, "worker"), hide=True)
            _run(conn, name, swarm.join_command(addresses[name], token, addresses[manager]), "docker swarm join")

        hosts.each(join, joining, step="swarm join")
        changes += [f"{w}: joined the swarm (worker)" for w in joining]
    wait_ready(hosts.conn(manager), manager, len(names), progress)
    return changes


def _member(f: SwarmFacts, manager_address: str, fresh: bool) -> bool:
    """Whether a worker already belongs to the manager's swarm (never true when that swarm was just created)."""
    return not fresh and f.state == "active" and f"{manager_address}:{swarm.MANAGER_PORT}" in f.managers


def wait_ready(conn: Connection, manager: str, count: int, progress: Progress,
               timeout: float = READY_TIMEOUT) -> None:
    cmd = "docker node ls --format '{{.Status}}'"
    deadline = time.monotonic() + timeout
    while True:
        out = str(conn.run(cmd, hide=True, warn=True).stdout).split()
        ready = out.count("Ready")
        if ready >= count:
            return
        if time.monotonic() > deadline:
            raise LabctlError(f"[{manager}] only {ready} of {count} swarm nodes are Ready after {timeout:g}s "
                              "(`docker node ls` there)",
                              hint="check 2377/tcp and 7946/tcp+udp between the docker hosts")
        time.sleep(0.5)


def leave(lab: str, hosts: Hosts, names: list[str], progress: Progress) -> list[str]:
    """Hosts whose record names this lab leave the swarm (workers first, then the manager); others are untouched."""
    facts = gather(hosts, names)
    ours = [n for n in names if facts[n].marker_lab == lab]
    changes: list[str] = []
    for group in ([n for n in ours if facts[n].marker_role != "manager"],
                  [n for n in ours if facts[n].marker_role == "manager"]):
        if not group:
            continue

        def one(name: str, conn: Connection) -> None:
            conn.run(f"{swarm.LEAVE}; {swarm.WAIT_INGRESS_GONE}", hide=True)
            conn.run("docker network inspect docker_gwbridge --format '{{len .Containers}}' 2>/dev/null | "
                     "grep -qx 0 && docker network rm docker_gwbridge >/dev/null 2>&1; true", hide=True)
            progress.step(name, "left the swarm this lab made")

        hosts.each(one, group, step="swarm leave")
        changes += [f"{n}: left the swarm ({facts[n].marker_role or 'member'})" for n in group]
    return changes


Plane = Swarm   # what labctl.planes.executor_halves instantiates
