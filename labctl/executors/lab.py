"""`up` and `down` of a playbook on the inventory's hosts: the side-effect half of plan.lab."""

from __future__ import annotations

import ipaddress
import json
import shlex
import time

from fabric import Connection

from labctl.errors import HostsFailed, LabctlError
from labctl.executors import breaks
from labctl.executors.dockerhost import wait_docker
from labctl.executors.labimages import ensure_images
from labctl.executors.remote import Hosts
from labctl.executors.services import Service, ServiceManager
from labctl.executors.steps import PreflightRefused, Report, run_steps
from labctl.executors.store import StoreRunner, store_runner
from labctl.model.inventory import Inventory
from labctl.model.playbook import Playbook
from labctl.plan import controlplane, daemon
from labctl.plan.controlplane import Engine
from labctl.plan.lab import (
    LABEL,
    RECIPE_LABEL,
    SPEC_LABEL,
    Existing,
    Step,
    container_order,
    container_run,
    plan_containers,
    plan_detach,
    plan_drift,
    plan_networks,
    plan_restore,
    stale_endpoints,
)
from labctl.plan.lock import JOURNAL, PRIVATE_DIR
from labctl.plan.overlay import (
    GATEWAY_BRIDGE,
    GossipGap,
    expected_peers,
    gateway_bridge_command,
    gateway_bridge_subnet,
    gossip_gaps,
    known_ips_script,
    neighbour_script,
    parse_addresses,
    parse_neighbours,
    unknown_containers,
    warm_command,
)
from labctl.plan.preflight import HostFacts, preflight_problems, underlay_problems
from labctl.planes import traits
from labctl.planes.base import PlanePlan
from labctl.planes.executor_base import Run, executor_halves
from labctl.planes.kvstore.executor import ensure_store
from labctl.planes.registry import plan_halves
from labctl.providers import registry
from labctl.ui import Progress

DAEMON_JSON = "/etc/docker/daemon.json"
BACKUP_JSON = f"{PRIVATE_DIR}/daemon.json.labctl-backup"
# JOURNAL (plan.lock): written before daemon.json changes and dockerd is stopped, removed once dockerd answers
# again: a run killed in between leaves it, and the next `up` or `down` finishes the restart (see recover_engines).


def dockerd_service(inv: Inventory, host: str) -> Service:
    return registry.provider(inv).dockerd_service(inv, host)


# ---------------------------------------------------------------- facts


FACT_SEP = "--labctl-fact--"
FACT_SCRIPT = "; ".join((
    "docker version --format '{{.Server.Version}}' 2>/dev/null",
    "docker info --format '{{.ID}}' 2>/dev/null",
    "hostname",
    "grep -c -a 'docker/libkv/store/consul' \"$(command -v dockerd)\" 2>/dev/null",
    "ls /sys/class/net",
    f"cat {DAEMON_JSON} 2>/dev/null",
    "docker network ls -q | xargs -r docker network inspect --format "
    f"'{{{{.Name}}}}\t{{{{index .Labels \"{LABEL}\"}}}}\t{{{{range .IPAM.Config}}}}{{{{.Subnet}}}} {{{{end}}}}'",
    f"docker ps -a --format '{{{{.Names}}}}\t{{{{.Label \"{LABEL}\"}}}}'",
    "docker image ls --format '{{.Repository}}:{{.Tag}}'",
    f"cat {BACKUP_JSON} 2>/dev/null",
    "ip -o -4 addr show",
)).replace("; ", f"; echo {FACT_SEP}; ")
FIXED_FACTS = 11   # sections above; each control plane with a facts_script follows in its own section


def fact_planes() -> dict[str, PlanePlan]:
    return {n: p for n, p in plan_halves().items() if p.facts_script}


def fact_script() -> str:
    """Preflight's one round trip: the sections above, then the planes' facts (appended after the split: their
    scripts contain "; ")."""
    return FACT_SCRIPT + "".join(f"; echo {FACT_SEP}; {p.facts_script}" for p in fact_planes().values())


def host_facts(conn: Connection, name: str, lab: str) -> HostFacts:
    """Everything preflight needs from one host, in one SSH round trip."""
    return parse_facts(str(conn.run(fact_script(), hide=True, warn=True).stdout), name, lab)


def parse_facts(out: str, name: str, lab: str) -> HostFacts:
    """fact_script()'s output (sections split by FACT_SEP lines) as HostFacts; lab: whose objects are not
    foreign."""
    halves = fact_planes()
    parts = [p.strip("\n") for p in out.split(FACT_SEP + "\n")]
    parts += [""] * (FIXED_FACTS + len(halves) - len(parts))
    version, engine_id, hostname, consul, ifaces, daemon_text, nets, ctrs, images, backup, addrs = (
        p.strip() for p in parts[:FIXED_FACTS])
    plane_facts = {n: p.parse_facts(name, parts[FIXED_FACTS + i] + "\n") for i, (n, p) in enumerate(halves.items())}
    config, config_problem = daemon.parse_config(daemon_text)
    backup_data = daemon.parse_config(backup)[0]
    foreign_nets: dict[str, tuple[str, ...]] = {}
    for line in nets.splitlines():
        net, owner, subnets = (line.split("\t") + ["", ""])[:3]
        if owner != lab:
            foreign_nets[net] = tuple(subnets.split())
    foreign_ctrs = []
    for line in ctrs.splitlines():
        ctr, owner = (line.split("\t") + [""])[:2]
        if ctr and owner != lab:
            foreign_ctrs.append(ctr)
    return HostFacts(name=name, engine_version=version, engine_id=engine_id, hostname=hostname,
                     consul_backend=consul.isdigit() and int(consul) > 0, interfaces=tuple(ifaces.split()),
                     daemon_json=config, daemon_json_error=config_problem, foreign_networks=foreign_nets,
                     foreign_containers=tuple(foreign_ctrs), images=frozenset(images.split()),
                     daemon_owner=str(backup_data.get(daemon.OWNER, "")), has_backup=bool(backup.strip()),
                     addresses=parse_ip_addr(addrs), planes=plane_facts)


def parse_ip_addr(out: str) -> dict[str, tuple[str, ...]]:
    """`ip -o -4 addr show` -> interface -> IPv4 addresses (lines: `2: eth1    inet 192.168.56.11/24 ...`)."""
    result: dict[str, list[str]] = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[2] == "inet":
            result.setdefault(fields[1].split("@")[0], []).append(fields[3].split("/")[0])
    return {k: tuple(v) for k, v in result.items()}





NETWORK_FORMAT = f'{{{{.Name}}}}\t{{{{index .Labels "{SPEC_LABEL}"}}}}\t{{{{index .Labels "{RECIPE_LABEL}"}}}}'
CONTAINER_FORMAT = (f'{{{{.Name}}}}\t{{{{index .Config.Labels "{SPEC_LABEL}"}}}}\t{{{{.State.Running}}}}\t'
                    f'{{{{index .Config.Labels "{RECIPE_LABEL}"}}}}')


def lab_networks(conn: Connection, lab: str) -> dict[str, Existing]:
    out = conn.run(f"docker network ls -q --filter label={shlex.quote(LABEL + '=' + lab)} | "
                   f"xargs -r docker network inspect --format {shlex.quote(NETWORK_FORMAT)}", hide=True).stdout
    result = {}
    for line in str(out).splitlines():
        name, spec, recipe = (line.split("\t") + ["", ""])[:3]
        if name:
            result[name] = Existing(spec, recipe)
    return result


def lab_containers(conn: Connection, lab: str) -> dict[str, Existing]:
    out = conn.run(f"docker ps -aq --filter label={shlex.quote(LABEL + '=' + lab)} | "
                   f"xargs -r docker inspect --format {shlex.quote(CONTAINER_FORMAT)}", hide=True).stdout
    result = {}
    for line in str(out).splitlines():
        name, spec, running, recipe = (line.split("\t") + ["", "", ""])[:4]
        if name:
            result[name.lstrip("/")] = Existing(spec, recipe, running == "true")
    return result


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


# ---------------------------------------------------------------- up


def up(inv: Inventory, pb: Playbook, hosts: Hosts, progress: Progress) -> Report:
    report = Report()
    docker_names = [h.name for h in inv.docker_hosts]
    manager = registry.service_manager(inv)
    recover_engines(inv, pb, hosts, docker_names, manager, store_runner(inv, pb, manager) if pb.store else None,
                    progress, report)
    progress.step("all", "preflight: engines, IDs, hostnames, interfaces, daemon.json, names and subnets in use")
    facts = hosts.each(lambda n, c: host_facts(c, n, pb.name), docker_names, step="preflight")
    problems: list[str] = []
    control = ""   # no overlay and no store: no plane is active (each only cleans up after itself)
    if controlplane.needs_decision(pb):
        decision = controlplane.decide(pb.control, pb.store.backend if pb.store else None,
                                       [Engine(n, f.engine_version, f.consul_backend) for n, f in facts.items()])
        progress.step("all", f"overlay control plane: {decision.control} ({decision.why})")
        problems += decision.problems
        control = decision.control
        pb = controlplane.effective(pb, control)
    addresses = {n: f.addresses[inv.underlay_interface][0] for n, f in facts.items()
                 if f.addresses.get(inv.underlay_interface)}
    run = Run(inv, pb, hosts, docker_names, manager, progress, report, facts, addresses)
    planes = executor_halves()
    for name, plane in planes.items():
        problems += plane.preflight(run, name == control)
    problems += preflight_problems(pb, facts) + underlay_problems(inv, facts)
    if problems:
        raise PreflightRefused(problems)
    images: list[tuple[str, str]] = []
    ensure_images(inv, pb, hosts, facts, progress, images)
    for host, what in images:
        report.add(host, what)
    for name, plane in planes.items():
        plane.bootstrap(run, name == control)
    configure_daemons(inv, pb, hosts, facts, manager, progress, report)
    if control and traits(control).docker_overlay and any(n.driver == "overlay" for n in pb.networks):
        ensure_gateway_bridges(pb, hosts, docker_names, facts, progress, report)
    for name, plane in planes.items():
        plane.join(run, name == control)
    nets = hosts.each(lambda n, c: lab_networks(c, pb.name), docker_names, step="list networks")
    ctrs = hosts.each(lambda n, c: lab_containers(c, pb.name), docker_names, step="list containers")
    try:
        drift_ctrs, drift_nets = plan_drift(pb, nets, ctrs)
        run_steps(hosts, drift_ctrs, progress, report, "drift: containers")
        run_steps(hosts, drift_nets, progress, report, "drift: networks")
        for name, plane in planes.items():
            plane.before_networks(run, name == control)
        run_steps(hosts, plan_detach(pb, inv, nets), progress, report, "detach from changed networks")
        run_steps(hosts, plan_networks(pb, inv, nets), progress, report, "networks")
        for name, plane in planes.items():
            plane.after_networks(run, name == control)
        now = hosts.each(lambda n, c: lab_containers(c, pb.name), docker_names, step="list containers")
        run_steps(hosts, plan_containers(pb, now), progress, report, "containers")
    except HostsFailed as exc:
        exc.notes += rollback(pb, hosts, docker_names, nets, ctrs, progress)
        raise
    ensure_attached(pb, hosts, docker_names, progress, report)
    wait_overlay_gossip(pb, hosts, progress, report)
    return report


def rollback(pb: Playbook, hosts: Hosts, names: list[str], before_nets: dict[str, dict[str, Existing]],
             before_ctrs: dict[str, dict[str, Existing]], progress: Progress) -> list[str]:
    """Docker refused a change part-way: bring back the lab's networks and containers as they were before this run
    changed them (from the specs recorded in their labels), so that a lab that worked still works. Best effort:
    returns lines that say what came back and what did not."""
    progress.step("all", "Docker refused a change: restoring the lab's networks and containers as they were")
    after_nets = hosts.each(lambda n, c: lab_networks(c, pb.name), names, step="list networks")
    after_ctrs = hosts.each(lambda n, c: lab_containers(c, pb.name), names, step="list containers")
    steps, lost = plan_restore(pb, before_nets, before_ctrs, after_nets, after_ctrs)
    notes = [f"not restored: {what}" for what in lost]
    for phase in ("network", "container"):
        mine = [s for s in steps if s.what.startswith(phase)]
        try:
            run_steps(hosts, mine, progress, Report(), f"restore {phase}s")
            notes += [f"restored: {s.what} on {s.host}" for s in mine]
        except HostsFailed as exc:
            failed = {f.host for f in exc.failures}
            notes += [f"restored: {s.what} on {s.host}" for s in mine if s.host not in failed]
            notes += [f"NOT restored on {f.host}: {f.stderr_tail.splitlines()[-1] if f.stderr_tail else ''}"
                      for f in exc.failures]
    if not steps and not lost:
        notes.append("nothing the lab had before this run was changed; what this run created stays (`labctl up` "
                     "again continues from it, `labctl down` removes it)")
    return notes


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


def docker_answers(conn: Connection) -> bool:
    return bool(conn.run(DOCKER_ANSWERS, hide=True, warn=True).ok)


def _engine_states(hosts: Hosts, names: list[str], strict: bool) -> dict[str, str]:
    """host -> why dockerd needs a restart ("" when it does not); "unreachable: ..." when the host cannot be asked."""
    cmd = (f"cat {JOURNAL} 2>/dev/null; echo; echo {FACT_SEP}; "
           f"{DOCKER_ANSWERS} && echo answering")

    def one(n: str, c: Connection) -> str:
        journal, _, answer = str(c.run(cmd, hide=True, warn=True).stdout).partition(FACT_SEP)
        if journal.strip():
            began = daemon.parse_config(journal)[0]
            return (f"an interrupted run of lab {str(began.get('lab', '?'))[:64]!r} left a dockerd restart "
                    f"unfinished ({str(began.get('why', ''))[:80]})")
        return "" if "answering" in answer else "dockerd is not running"

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


GW_QUERY = (f"docker network inspect {GATEWAY_BRIDGE} --format "
            "'{{range .IPAM.Config}}{{.Subnet}} {{end}}|{{len .Containers}}' 2>/dev/null")


def ensure_gateway_bridges(pb: Playbook, hosts: Hosts, names: list[str], facts: dict[str, HostFacts],
                           progress: Progress, report: Report) -> None:
    """docker_gwbridge (an overlay container's way out) on a subnet clear of the lab's own, made before swarm init
    or the first overlay container would let Docker pick one; an unused one on a lab subnet is made again."""
    def one(name: str, conn: Connection) -> None:
        f = facts[name]
        subnets, _, users = str(conn.run(GW_QUERY, hide=True, warn=True).stdout).strip().partition("|")
        lab_nets = [n.subnet for n in pb.networks]
        if subnets.strip():
            clash = any(ipaddress.ip_network(s, strict=False).overlaps(n) for s in subnets.split() for n in lab_nets)
            if not clash or users.strip() not in ("", "0"):
                return
            conn.run(f"docker network rm {GATEWAY_BRIDGE}", hide=True)
            progress.step(name, f"{GATEWAY_BRIDGE} removed: its subnet {subnets.strip()} overlaps the lab's networks")
        in_use = [s for subs in f.foreign_networks.values() for s in subs if s]
        in_use += [a for addrs in f.addresses.values() for a in addrs]
        subnet = gateway_bridge_subnet(pb, name, in_use)
        if subnet is None:
            raise LabctlError(f"[{name}] no free subnet for {GATEWAY_BRIDGE} outside the lab's networks",
                              hint="free one of 172.18-31.0.0/16 on this host")
        conn.run(gateway_bridge_command(subnet), hide=True)
        progress.step(name, f"{GATEWAY_BRIDGE} {subnet} (clear of the lab's subnets)")
        report.add(name, f"network {GATEWAY_BRIDGE} {subnet} created")

    hosts.each(one, names, step=GATEWAY_BRIDGE)


def start_dockerd(inv: Inventory, name: str, conn: Connection, manager: ServiceManager) -> None:
    svc = dockerd_service(inv, name)
    manager.start(conn, svc)
    try:
        wait_docker(conn)
    except LabctlError as exc:
        raise LabctlError(f"{exc.message}; dockerd log:\n{manager.log_tail(conn, svc)}") from None
    # Engine 20.10's `docker info` does not show the cluster store; overlay visibility (below) proves it.


GOSSIP_TIMEOUT = 60
GOSSIP_FIRST_LOOK = 3
GOSSIP_REPAIR_AFTER = 15   # seconds of warming before the containers a host never learned are created again
ADDRESS_TEMPLATE = "{{.Name}}{{range $k, $v := .NetworkSettings.Networks}} {{$k}}={{$v.IPAddress}}{{end}}"


def wait_overlay_gossip(pb: Playbook, hosts: Hosts, progress: Progress, report: Report,
                        timeout: float = GOSSIP_TIMEOUT) -> None:
    """Until every host has heard of every container on the other hosts, per overlay network (plan.overlay).

    A short first look; hosts still missing containers then ping each remote container once
    (plan.overlay.warm_command) and look again, round after round until `timeout`. dockerd drops a miss now and
    then when several arrive together, hence rounds. Fails naming the hosts that stay short: their containers could
    not reach part of the lab."""
    expected = {h: nets for h, nets in expected_peers(pb).items() if any(nets.values())}
    if not expected:
        return
    progress.step("all", "overlay: waiting until every host knows every remote container (gossip)")
    gaps = gossip_gaps(expected, _neighbours(hosts, expected, GOSSIP_FIRST_LOOK))
    if not gaps:
        return
    addresses = overlay_addresses(pb, hosts, list(expected))
    start = time.monotonic()
    repaired = False
    while gaps and time.monotonic() < start + timeout:
        progress.step("all", "overlay: " + "; ".join(f"{g.host} knows {g.seen}/{g.expected} on {g.network}"
                                                     for g in gaps) + ": one ping to each remote container from there")
        _warm(pb, hosts, gaps, addresses)
        still = {g.host: expected[g.host] for g in gaps}
        gaps = gossip_gaps(still, _neighbours(hosts, still, GOSSIP_FIRST_LOOK))
        if gaps and not repaired and time.monotonic() > start + GOSSIP_REPAIR_AFTER:
            repaired = True
            if _recreate_unknown(pb, hosts, gaps, addresses, progress, report):
                addresses = overlay_addresses(pb, hosts, list(expected))  # recreated containers have new ones
    if gaps:
        raise LabctlError(
            f"overlay gossip incomplete after {timeout:g}s:\n" + "\n".join(f"  {g}" for g in gaps),
            hint="the hosts' dockerds are not in one gossip cluster (serf, TCP and UDP 7946 between the hosts' "
                 "underlay addresses). Check that 7946 is open, then `labctl down` and `labctl up` (which starts "
                 "the dockerds one at a time)")


def _recreate_unknown(pb: Playbook, hosts: Hosts, gaps: list[GossipGap], addresses: dict[str, dict[str, str]],
                      progress: Progress, report: Report) -> bool:
    """Warming did not help for GOSSIP_REPAIR_AFTER seconds: create once more the remote containers a short host has
    no entry for (plan.overlay.unknown_containers says when that happens), with the containers that share their
    stack. Returns whether any was recreated."""
    def known(n: str, c: Connection) -> dict[str, set[str]]:
        return {g.network: set(str(c.run(known_ips_script(g.network), hide=True, warn=True).stdout).split())
                for g in gaps if g.host == n}

    seen = hosts.each(known, sorted({g.host for g in gaps}), step="overlay neighbours")
    names = sorted({name for g in gaps for name in unknown_containers(pb, g.host, g.network,
                                                                       seen[g.host][g.network], addresses)})
    if not names:  # the count is short but every address has an entry (a stale one?): all remote ones go again
        names = sorted({name for g in gaps for name in unknown_containers(pb, g.host, g.network, set(), addresses)})
    for g in gaps:
        entries = ", ".join(sorted(seen[g.host][g.network])) or "nothing"
        progress.step(g.host, f"overlay {g.network}: neighbour entries for {entries}")
    names += [c.name for c in pb.containers if c.network_mode in {f"container:{n}" for n in names}]
    if not names:
        return False
    short = ", ".join(sorted({g.host for g in gaps}))
    recreate(pb, hosts, names, f"{short} never learned it (an overlay event was lost)", progress, report)
    return True


def recreate(pb: Playbook, hosts: Hosts, names: list[str], why: str, progress: Progress, report: Report) -> None:
    """The named lab containers removed and created again from the playbook (in dependency order)."""
    steps = [Step(c.host, f"container {c.name}", f"docker rm -f {shlex.quote(c.name)} >/dev/null 2>&1; "
                  f"{stale_endpoints(pb, c)}{container_run(pb, c)}", f"created again: {why}", f"containers.{c.name}")
             for c in container_order(tuple(pb.container(n) for n in names))]
    run_steps(hosts, steps, progress, report, "repair")


def ensure_attached(pb: Playbook, hosts: Hosts, names: list[str], progress: Progress, report: Report) -> None:
    """Every container has an address on each of its networks; one that lacks one is created again, once.

    Seen in CI on swarm: `docker run --network ov` on the manager right after `swarm init` succeeded and left c1
    attached without an address; the gossip count did not notice (swarm's load-balancer endpoints count too)."""
    def unattached(addresses: dict[str, dict[str, str]]) -> list[str]:
        return [c.name for c in pb.containers if c.network_mode is None and c.name in addresses  # running ones
                and any(not addresses[c.name].get(a.network) for a in c.networks)]

    missing = unattached(overlay_addresses(pb, hosts, names))
    if not missing:
        return
    recreate(pb, hosts, missing, "it had no address on one of its networks", progress, report)
    still = unattached(overlay_addresses(pb, hosts, names))
    if still:
        raise LabctlError(f"container(s) {', '.join(still)} have no address on one of their networks after being "
                          "created again", hint="`docker inspect` them on their hosts; then `labctl up` again")


def _warm(pb: Playbook, hosts: Hosts, gaps: list[GossipGap], addresses: dict[str, dict[str, str]]) -> None:
    commands: dict[str, list[str]] = {}
    for g in gaps:
        cmd = warm_command(pb, g.host, g.network, addresses)
        commands.setdefault(g.host, []).extend([cmd] if cmd else [])

    def one(n: str, c: Connection) -> None:
        for cmd in commands[n]:
            c.run(cmd, hide=True, warn=True)

    hosts.each(one, list(commands), step="overlay warm")


def overlay_addresses(pb: Playbook, hosts: Hosts, names: list[str]) -> dict[str, dict[str, str]]:
    """container -> network -> IP, for the lab's containers on these hosts."""
    found = hosts.each(lambda n, c: lab_addresses(c, pb.name), names, step="overlay addresses")
    return {name: nets for per_host in found.values() for name, nets in per_host.items()}


def lab_addresses(conn: Connection, lab: str) -> dict[str, dict[str, str]]:
    label = shlex.quote(f"{LABEL}={lab}")
    out = conn.run(f"docker ps -q --filter label={label} | xargs -r docker inspect -f {shlex.quote(ADDRESS_TEMPLATE)}",
                   hide=True).stdout
    return parse_addresses(str(out))


def _neighbours(hosts: Hosts, expected: dict[str, dict[str, int]], timeout: float) -> dict[str, dict[str, int]]:
    def one(n: str, c: Connection) -> dict[str, int]:
        return parse_neighbours(str(c.run(neighbour_script(expected[n], timeout), hide=True).stdout))

    return hosts.each(one, list(expected), step="overlay gossip")


# ---------------------------------------------------------------- down


def undo_faults(inv: Inventory, pb: Playbook, hosts: Hosts, progress: Progress, report: Report) -> None:
    """A fault `labctl break` injected is reverted first (an iptables rule, an MTU: nothing else of `down` would)."""
    try:
        report.changes += breaks.undo(inv, pb, hosts, progress)
    except HostsFailed as exc:
        report.skipped += [f"{f.host}: the injected fault was not undone: {f.stderr_tail.strip()}"
                           for f in exc.failures]


def down(inv: Inventory, pb: Playbook, hosts: Hosts, progress: Progress) -> Report:
    """Everything of the lab goes, whatever state an earlier run left and whichever control plane it used: a stopped
    dockerd or store is started first (what cannot be started or reached is skipped, named in the report, and down
    exits non-zero); every plane then removes what this lab has of it."""
    report = Report()
    manager = registry.service_manager(inv)
    skipped = recover_engines(inv, pb, hosts, [h.name for h in inv.docker_hosts], manager,
                              store_runner(inv, pb, manager) if pb.store else None, progress, report, strict=False)
    report.skipped += [f"{n}: {why}" for n, why in skipped.items()]
    undo_faults(inv, pb, hosts, progress, report)
    docker_names = [h.name for h in inv.docker_hosts if h.name not in skipped]
    run = Run(inv, pb, hosts, docker_names, manager, progress, report)
    planes = executor_halves().values()
    for plane in planes:
        plane.down_begin(run)
    label = shlex.quote(f"{LABEL}={pb.name}")

    def remove_containers(name: str, conn: Connection) -> None:
        removed = remove_lab_containers(conn, pb.name)
        if removed:
            report.add(name, f"{removed} container(s) removed")
            progress.step(name, f"removed {removed} container(s)")

    def remove_networks(name: str, conn: Connection) -> None:
        out = str(conn.run(f"docker network ls --filter label={label} --format '{{{{.Name}}}}'",
                           hide=True).stdout).split()
        for net in out:  # an overlay appears on every host; the first host to remove it wins
            res = conn.run(f"docker network rm {shlex.quote(net)}", hide=True, warn=True)
            if res.ok:
                report.add(name, f"network {net} removed")
        # Docker made docker_gwbridge for the lab's overlay containers; remove it once nothing uses it.
        gw = conn.run("docker network inspect docker_gwbridge --format '{{len .Containers}}'", hide=True, warn=True)
        empty = gw.ok and str(gw.stdout).strip() == "0"
        if empty and conn.run("docker network rm docker_gwbridge", hide=True, warn=True).ok:
            report.add(name, "network docker_gwbridge removed (Docker made it for the overlay)")

    hosts.each(remove_containers, docker_names, step="remove containers")
    for name in docker_names:  # sequential: overlay removal must not race between hosts
        remove_networks(name, hosts.conn(name))
    for plane in planes:
        plane.teardown(run)
    hosts.each(lambda n, c: restore_daemon(inv, pb.name, n, c, manager, progress, report), docker_names,
               step="restore daemon config")
    for plane in planes:
        plane.down_end(run)
    return report


def remove_lab_containers(conn: Connection, lab: str) -> int:
    label = shlex.quote(f"{LABEL}={lab}")
    out = str(conn.run(f"docker ps -aq --filter label={label}", hide=True).stdout).split()
    if out:
        conn.run("docker rm -f " + " ".join(shlex.quote(i) for i in out), hide=True)
    return len(out)


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
