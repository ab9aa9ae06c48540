"""dockerd's configuration: daemon.json merged and restored (with labctl's backup), the restart journal, and
bringing every dockerd back to its current daemon.json after a killed run (recover_engines)."""

from __future__ import annotations

import json
import shlex
import time

from fabric import Connection

from labctl.errors import HostsFailed, LabctlError
from labctl.executors.dockerhost import wait_docker
from labctl.executors.facts import ask
from labctl.executors.labobjects import remove_lab_containers
from labctl.executors.remote import Hosts
from labctl.executors.services import Service, ServiceManager
from labctl.executors.steps import PreflightRefused, Report
from labctl.executors.store import StoreRunner
from labctl.facts import fact
from labctl.model.inventory import Inventory
from labctl.model.playbook import Playbook
from labctl.plan import daemon
from labctl.plan.daemon import BACKUP_JSON, DAEMON_JSON
from labctl.plan.lock import JOURNAL, PRIVATE_DIR
from labctl.plan.preflight import HostFacts
from labctl.planes.kvstore.executor import ensure_store
from labctl.providers import registry
from labctl.ui import Progress

# JOURNAL (plan.lock): written before daemon.json changes and dockerd is stopped, removed once dockerd answers
# again: a run killed in between leaves it, and the next `up` or `down` finishes the restart (see recover_engines).


def dockerd_service(inv: Inventory, host: str) -> Service:
    return registry.provider(inv).dockerd_service(inv, host)


def read_json(conn: Connection, path: str) -> dict | None:
    res = conn.run(f"cat {shlex.quote(path)}", hide=True, warn=True)
    if not res.ok:
        return None
    data, problem = daemon.parse_config(str(res.stdout))
    if problem:
        raise LabctlError(f"{path} on this host {problem}; nothing was changed here",
                          hint=f"fix or remove {path}, then run up again")
    return data


def write_json(conn: Connection, path: str, data: dict, mode: str = "600") -> None:
    """Atomically, through a temporary file with a unique name in the same directory (two runs, or a killed one,
    never share or half-write it)."""
    payload = json.dumps(data, indent=2, sort_keys=True) + "\n"
    folder, base = path.rsplit("/", 1)
    conn.run(f"mkdir -p {shlex.quote(folder)} && tmp=$(mktemp {shlex.quote(f'{folder}/.{base}.XXXXXX')}) && "
             f"cat > \"$tmp\" <<'LABCTL_EOF' && chmod {mode} \"$tmp\" && mv \"$tmp\" {shlex.quote(path)}\n"
             f"{payload}LABCTL_EOF", hide=True)


def private_dir(conn: Connection) -> None:
    conn.run(f"umask 077; mkdir -p {PRIVATE_DIR} && chmod 700 {PRIVATE_DIR}", hide=True)


def write_journal(conn: Connection, lab: str, why: str) -> None:
    private_dir(conn)
    write_json(conn, JOURNAL, {"lab": lab, "why": why, "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


def clear_journal(conn: Connection) -> None:
    conn.run(f"rm -f {JOURNAL}", hide=True)


def recover_engines(inv: Inventory, pb: Playbook, hosts: Hosts, names: list[str], manager: ServiceManager,
                    store: StoreRunner | None, progress: Progress, report: Report,
                    strict: bool = True) -> dict[str, str]:
    """Whatever an earlier run left, each docker host ends with dockerd running on its current daemon.json.

    A host needs this when its journal says a restart was begun (the run died between writing daemon.json and
    starting dockerd again) or when dockerd does not answer. Its lab containers are removed and created again later:
    a restarted dockerd never relearns the overlay's remote containers for the containers it had. With a cluster
    store, the store runs first and the dockerds start one at a time (one gossip cluster, as in configure_daemons).
    strict=False (`down`): hosts that cannot be brought back are returned (host -> why) instead of failing."""
    states = _engine_states(hosts, names, strict)
    skipped = {n: why for n, why in states.items() if why.startswith("unreachable")}
    todo = {n: why for n, why in states.items() if why and n not in skipped}
    if not todo:
        return skipped
    if store is not None and pb.store is not None:
        problem = store.missing_prerequisite(hosts.conn(pb.store.host))
        if problem and strict:
            raise PreflightRefused([problem])
        if not problem:
            ensure_store(pb, store, hosts, progress, report)

    def fix(n: str, c: Connection) -> None:
        progress.step(n, f"{todo[n]}: restarting dockerd (the lab's containers here are created again)")
        if docker_answers(c):  # a journal alone does not say whether the killed run had stopped dockerd yet
            remove_lab_containers(c, pb.name)
        manager.stop(c, dockerd_service(inv, n))
        start_dockerd(inv, n, c, manager)
        remove_lab_containers(c, pb.name)
        clear_journal(c)
        report.add(n, f"{todo[n]}: dockerd restarted")
        report.repairs.append(report.changes[-1])

    groups = [[n] for n in todo] if pb.store is not None else [list(todo)]
    for group in groups:
        try:
            hosts.each(fix, group, step="dockerd recovery")
        except HostsFailed as exc:
            if strict:
                raise
            skipped.update({f.host: f"dockerd could not be started: {f.stderr_tail[-200:]}" for f in exc.failures})
    return skipped


DOCKER_ANSWERS = "timeout 20 docker version --format '{{.Server.Version}}' >/dev/null 2>&1"
ANSWERING = fact("engine.answering", f"{DOCKER_ANSWERS} && echo answering", lambda t: "answering" in t)


def docker_answers(conn: Connection) -> bool:
    return bool(conn.run(DOCKER_ANSWERS, hide=True, warn=True).ok)


JOURNAL_BEGUN = fact("host.restart-journal", f"cat {JOURNAL} 2>/dev/null",
                     lambda t: daemon.parse_config(t)[0] if t.strip() else None)


def _engine_states(hosts: Hosts, names: list[str], strict: bool) -> dict[str, str]:
    """host -> why dockerd needs a restart ("" when it does not); "unreachable: ..." when the host cannot be asked."""
    def one(n: str, c: Connection) -> str:
        a = ask(c, n, (JOURNAL_BEGUN, ANSWERING))
        began = a[JOURNAL_BEGUN]
        if began is not None:
            return (f"an interrupted run of lab {str(began.get('lab', '?'))[:64]!r} left a dockerd restart "
                    f"unfinished ({str(began.get('why', ''))[:80]})")
        return "" if a[ANSWERING] else "dockerd is not running"

    try:
        return hosts.each(one, names, step="engine state")
    except HostsFailed as exc:
        if strict:
            raise
        return {**exc.results, **{f.host: f"unreachable: {f.stderr_tail[-200:]}" for f in exc.failures}}


def configure_daemons(inv: Inventory, pb: Playbook, hosts: Hosts, facts: dict[str, HostFacts],
                      manager: ServiceManager, progress: Progress, report: Report) -> None:
    """daemon.json written and dockerd stopped on every host that needs it, in parallel; then dockerd started again
    one host at a time when the lab has a cluster store.

    Each dockerd joins the overlay's gossip (serf, port 7946) once, at start-up, by contacting one peer it finds in
    the store, and never joins another. Started together, the new daemons can join each other in separate groups:
    seen here with 8 hosts, split for good into two serf clusters ("could not resolve peer ... timed out resolving
    peer by querying the cluster"). Started one after another, each daemon can only find daemons that already run,
    all in one cluster, so it joins that cluster. Stopping in parallel keeps most of the cost parallel (stopping a
    dockerd with containers takes longer than starting one).

    The lab's containers on such a host are removed first and created again afterwards: after a restart, dockerd
    restores an overlay's namespace for containers it had, but that namespace never learns the other hosts'
    containers again (seen here: 0 of 35 neighbour entries, pings to other hosts lost, for good).
    """
    merged = {n: daemon.merge(f.daemon_json, daemon.desired_keys(inv, pb, n)) for n, f in facts.items()}
    changing = {n: f for n, f in facts.items() if merged[n] != f.daemon_json}
    if not changing:
        return

    def prepare(n: str, c: Connection) -> None:
        write_journal(c, pb.name, "daemon.json changed by up")
        write_daemon_json(inv, pb, changing[n], merged[n], c, progress)
        removed = remove_lab_containers(c, pb.name)
        if removed:
            report.add(n, f"{removed} lab container(s) removed before the restart; they are created again")
        manager.stop(c, dockerd_service(inv, n))

    def start(n: str, c: Connection) -> None:
        start_dockerd(inv, n, c, manager)
        clear_journal(c)
        report.add(n, "daemon.json changed, dockerd restarted")

    names = list(changing)
    hosts.each(prepare, names, step="daemon config")
    if pb.store is None:
        hosts.each(start, names, step="dockerd start")
        return
    for n in names:
        progress.step(n, "starting dockerd (one host at a time, so that all join one overlay gossip cluster)")
        hosts.each(start, [n], step="dockerd start")


def write_daemon_json(inv: Inventory, pb: Playbook, facts: HostFacts, new: dict, conn: Connection,
                      progress: Progress) -> None:
    """`new` merged into daemon.json as preflight read it (nothing touches it in between): no second read."""
    if not facts.has_backup:
        write_json(conn, BACKUP_JSON, daemon.backup_of(facts.daemon_json, docker0_address(conn), pb.name))
    write_json(conn, DAEMON_JSON, new, mode="644")
    wanted = daemon.desired_keys(inv, pb, facts.name)
    progress.step(facts.name, f"daemon.json: {', '.join(f'{k}={v}' for k, v in wanted.items())}; restarting dockerd")


def start_dockerd(inv: Inventory, name: str, conn: Connection, manager: ServiceManager) -> None:
    svc = dockerd_service(inv, name)
    manager.start(conn, svc)
    try:
        wait_docker(conn)
    except LabctlError as exc:
        raise LabctlError(f"{exc.message}; dockerd log:\n{manager.log_tail(conn, svc)}") from None
    # Engine 20.10's `docker info` does not show the cluster store; overlay visibility (below) proves it.


def docker0_address(conn: Connection) -> str | None:
    out = str(conn.run("ip -o -4 addr show dev docker0", hide=True, warn=True).stdout).split()
    return out[3] if len(out) > 3 and out[2] == "inet" else None


def restore_daemon(inv: Inventory, lab_name: str, name: str, conn: Connection, manager: ServiceManager,
                   progress: Progress, report: Report) -> None:
    backup = read_json(conn, BACKUP_JSON)
    if backup is None or backup.get(daemon.OWNER, lab_name) != lab_name:
        return  # labctl did not change this config, or another lab did (its own down restores it)
    current = read_json(conn, DAEMON_JSON) or {}
    sequence = daemon.restore_sequence(current, backup, docker0_address(conn))
    if sequence:
        write_journal(conn, lab_name, "daemon.json restored by down")
    for config in sequence:
        if config:
            write_json(conn, DAEMON_JSON, config, mode="644")
        else:
            conn.run(f"rm -f {DAEMON_JSON}", hide=True)
        note = f" (bip {config['bip']} first: docker0 gets its old address back)" if config is not sequence[-1] \
            else ""
        progress.step(name, f"daemon.json restored{note}; restarting dockerd")
        manager.restart(conn, dockerd_service(inv, name))
        wait_docker(conn)
    clear_journal(conn)
    if sequence:
        report.add(name, "daemon.json restored, dockerd restarted" +
                   (", docker0 address restored" if len(sequence) > 1 else ""))
    conn.run(f"rm -f {BACKUP_JSON}", hide=True)
