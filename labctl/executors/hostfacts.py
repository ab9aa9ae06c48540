"""Preflight's facts of a docker host in one SSH round trip: the engine, its ID, hostname, interfaces, daemon.json,
what other labs have there, images, addresses, and every control plane's own facts (labctl.planes)."""

from __future__ import annotations

from fabric import Connection

from labctl.plan import daemon
from labctl.plan.daemon import BACKUP_JSON, DAEMON_JSON
from labctl.plan.lab import (
    LABEL,
)
from labctl.plan.preflight import HostFacts
from labctl.planes.base import PlanePlan
from labctl.planes.registry import plan_halves

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
