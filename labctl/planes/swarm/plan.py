"""Swarm mode as the overlay's control plane (pure: facts parsed, refusals and commands derived).

labctl creates a swarm with the first docker host as its only manager and the others as workers, all bound to the
underlay address (advertise, listen and data path), and creates the lab's overlay networks there with
`--attachable`, so that standalone containers (`docker run --network ov`) join them as with a cluster store. No
daemon.json change, no dockerd restart.

A record on each host (`/var/lib/labctl/swarm.json`: lab and role) is written before `docker swarm init/join`, so a
run killed half-way is recognised by the next one; labctl leaves a swarm only where that record names the lab, and
never joins or leaves a swarm it did not make.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
from dataclasses import dataclass, field, replace
from typing import Any

from labctl.facts import answers, fact, script
from labctl.model.playbook import Playbook
from labctl.plan.lock import PRIVATE_DIR
from labctl.planes.base import Engine, PlanePlan, engine_version
from labctl.planes.swarm import TRAITS

MARKER = f"{PRIVATE_DIR}/swarm.json"
MANAGER_PORT = 2377
INGRESS_SUBNET = ipaddress.ip_network("10.0.0.0/24")   # swarm's default ingress network, made by `swarm init`
TOKEN_RE = re.compile(r"^SWMTKN-1-[0-9a-z]{20,80}-[0-9a-z]{20,40}$")
PORTS = {"2377": "2377/tcp (cluster management)", "7946": "7946/tcp+udp (node gossip)",
         "4789": "4789/udp (VXLAN data)"}


def _json_object(text: str) -> dict[str, Any]:
    try:
        found = json.loads(text.strip() or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


INFO = fact("swarm.info", "docker info --format '{{json .Swarm}}' 2>/dev/null", _json_object)
MARK = fact("swarm.marker", f"head -c 4000 {MARKER} 2>/dev/null", _json_object)
BLOCKED = fact("swarm.blocked", "iptables-save 2>/dev/null | grep -E -- '-j (DROP|REJECT)' | "
                                "grep -E -- '(2377|7946|4789)' | head -20",
               lambda t: tuple(line.strip()[:200] for line in t.splitlines() if line.strip()))
FACTS = (INFO, MARK, BLOCKED)
FACTS_SCRIPT = script(FACTS, end=False)


@dataclass(frozen=True)
class SwarmFacts:
    host: str
    state: str                 # inactive | pending | active | error | locked ("" when dockerd did not answer)
    node_id: str
    address: str               # NodeAddr: the address the node advertises (its VTEP for swarm overlays)
    manager: bool              # ControlAvailable: this node manages the swarm
    managers: tuple[str, ...]  # addresses (ip:port) of the managers it knows
    marker_lab: str            # the lab whose labctl run made this host create or join its swarm ("" none)
    marker_role: str           # manager | worker
    blocked: tuple[str, ...]   # iptables rules that drop swarm ports

    @property
    def ours(self) -> bool:
        return bool(self.marker_lab)


def parse_facts(host: str, text: str) -> SwarmFacts:
    """FACTS_SCRIPT's output: the node as `docker info` shows it, labctl's marker, the rules that drop swarm's
    ports."""
    a = answers(host, FACTS, text)
    swarm, marker = a[INFO], a[MARK]
    managers = tuple(str(m.get("Addr", "")) for m in swarm.get("RemoteManagers") or [] if isinstance(m, dict))
    return SwarmFacts(host=host, state=str(swarm.get("LocalNodeState", "")), node_id=str(swarm.get("NodeID", "")),
                      address=str(swarm.get("NodeAddr", ""))[:64],
                      manager=bool(swarm.get("ControlAvailable")), managers=managers,
                      marker_lab=str(marker.get("lab", ""))[:64], marker_role=str(marker.get("role", ""))[:16],
                      blocked=a[BLOCKED])


def role(f: SwarmFacts) -> str:
    """One word for status: manager, worker, or the node's state (inactive: not in a swarm)."""
    if f.state == "active":
        return "manager" if f.manager else "worker"
    return f.state or "dockerd not answering"


def blocked_ports(rule: str) -> list[str]:
    """The swarm ports an iptables-save rule drops (`--dport 4789`, `--dports 2377,7946`)."""
    found = re.findall(r"--dports? (\S+)", rule)
    ports = {p for spec in found for p in re.split(r"[,:]", spec)}
    return [PORTS[p] for p in sorted(ports) if p in PORTS]


def problems(pb: Playbook, facts: dict[str, SwarmFacts], manager: str) -> list[str]:
    """Refusals before any change when the lab's overlay runs on swarm mode."""
    result = []
    for f in facts.values():
        if f.state not in ("", "inactive") and f.marker_lab != pb.name:
            owner = f"lab {f.marker_lab!r}" if f.marker_lab else "someone else (labctl did not make it)"
            result.append(f"[{f.host}] is already in a swarm made by {owner} (node {f.node_id[:12] or '?'}, state "
                          f"{f.state}): labctl never joins or leaves a swarm it did not make; use other hosts, "
                          "or run `docker swarm leave` there yourself")
        elif f.marker_lab == pb.name and f.state == "active" and (f.host == manager) != f.manager:
            result.append(f"[{f.host}] is a {'manager' if f.manager else 'worker'} of this lab's swarm, and the "
                          f"first docker host ({manager}) must be its only manager: run `labctl down` with this "
                          "playbook, then `up` again")
        for rule in f.blocked:
            ports = blocked_ports(rule)
            if ports:
                result.append(f"[{f.host}] iptables drops swarm traffic ({', '.join(ports)}): `{rule}`; swarm needs "
                              "2377/tcp, 7946/tcp+udp and 4789/udp between the docker hosts")
    for net in pb.networks:
        if net.subnet.overlaps(INGRESS_SUBNET):
            result.append(f"networks.{net.name}: {net.subnet} overlaps swarm's ingress network {INGRESS_SUBNET} "
                          "(made by `docker swarm init`): pick another subnet")
    return result


def record(lab: str, role: str) -> str:
    """Shell that writes the host's swarm record (before init or join: a killed run leaves it behind)."""
    body = json.dumps({"lab": lab, "role": role}, sort_keys=True)
    return (f"mkdir -p {PRIVATE_DIR} && chmod 700 {PRIVATE_DIR} && printf '%s\\n' {shlex.quote(body)} > "
            f"{MARKER}.$$ && mv {MARKER}.$$ {MARKER}")


def init_command(address: str) -> str:
    addr = str(ipaddress.IPv4Address(address))
    return (f"docker swarm init --advertise-addr {addr} --listen-addr {addr}:{MANAGER_PORT} "
            f"--data-path-addr {addr}")


def join_command(address: str, token: str, manager_address: str) -> str:
    addr, mgr = str(ipaddress.IPv4Address(address)), str(ipaddress.IPv4Address(manager_address))
    if not TOKEN_RE.match(token):
        raise ValueError(f"not a swarm join token: {token[:40]!r}")
    return (f"docker swarm join --advertise-addr {addr} --listen-addr {addr}:{MANAGER_PORT} --data-path-addr {addr} "
            f"--token {token} {mgr}:{MANAGER_PORT}")


LEAVE = f"docker swarm leave --force >/dev/null 2>&1; rm -f {MARKER}"
INGRESS_GONE_TRIES = 40    # x 0.5 s: dockerd removes the ingress network after `swarm leave` returns
# dockerd releases the ingress network in the background and gives up waiting after 5 s (DaemonLeavesCluster), so on a
# loaded host `ingress` can outlive the leave: wait for it, bounded, then remove what is left of it.
NODE_ACTIVE_TRIES = 60    # x 0.5 s: swarm's node component starts a few seconds after dockerd answers
WAIT_NODE_ACTIVE = (
    "i=0; while [ \"$(timeout 10 docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null)\" != active ] && "
    f"[ $i -lt {NODE_ACTIVE_TRIES} ]; do sleep 0.5; i=$((i+1)); done; true")
WAIT_INGRESS_GONE = (
    "i=0; while [ \"$(docker network inspect ingress --format '{{.Ingress}}' 2>/dev/null)\" = true ] && "
    f"[ $i -lt {INGRESS_GONE_TRIES} ]; do sleep 0.5; i=$((i+1)); done; "
    "if [ \"$(docker network inspect ingress --format '{{.Ingress}}' 2>/dev/null)\" = true ]; then "
    "docker network rm ingress >/dev/null 2>&1; fi; true")


# ---------------------------------------------------------------- the plane's pure half

SWARM_ATTACHABLE = (17, 6)   # `docker network create --attachable` (standalone containers on a swarm overlay)


def swarm_refusal(version: str) -> str | None:
    parsed = engine_version(version)
    if parsed is None:
        return "no Docker engine answers" if not version else f"engine version {version[:40]!r} is not understood"
    if parsed < SWARM_ATTACHABLE:
        return f"Docker Engine {version} predates attachable swarm overlays (17.06)"
    return None


@dataclass
class SwarmDiagnosis:
    """What verify's diagnosis finds of the swarm (labctl.planes.swarm.executor)."""

    out: dict[str, str] = field(default_factory=dict)           # host -> its swarm state, when not active
    drops: dict[str, list[str]] = field(default_factory=dict)   # host -> iptables rules dropping swarm's ports


def diagnosis(facts: dict[str, SwarmFacts]) -> SwarmDiagnosis:
    found = SwarmDiagnosis()
    for n, f in facts.items():
        if f.state != "active":
            found.out[n] = f.state or "dockerd not answering"
        rules = [r for r in f.blocked if blocked_ports(r)]
        if rules:
            found.drops[n] = rules
    return found


class SwarmPlan(PlanePlan):
    traits = TRAITS
    facts_script = FACTS_SCRIPT
    shown_always = True        # whether a host is in a swarm matters to every lab
    overlay_missing = "no container there is attached to it, or the host left the swarm; run `labctl up`"

    def overlay_cause(self, c: Any, diag: Any) -> str | None:
        found: SwarmDiagnosis = diag.plane or SwarmDiagnosis()
        for host in (c.src_host, c.dst_host):
            if host and host in found.out:
                return (f"{host} is not in the lab's swarm (state: {found.out[host]}): it cannot carry overlay "
                        f"{c.network}; run `labctl up`")
        for host in (c.src_host, c.dst_host):
            if host and found.drops.get(host):
                return (f"swarm traffic is dropped on {host} by its firewall: {found.drops[host][0]} (swarm needs "
                        "2377/tcp, 7946/tcp+udp and 4789/udp between the docker hosts)")
        return None

    def parse_facts(self, host: str, text: str) -> SwarmFacts:
        return parse_facts(host, text)

    def refusals(self, store_backend: str | None, engines: list[Engine]) -> dict[str, str]:
        return {e.host: why for e in engines if (why := swarm_refusal(e.version))}

    def problem(self, host: str, why: str) -> str:
        return f"[{host}] overlay.control swarm: {why}; upgrade Docker on this host"

    def effective(self, pb: Playbook) -> Playbook:
        """No store (auto may have had one declared), and overlays standalone containers can join."""
        nets = tuple(replace(n, attachable=True) if n.driver == "overlay" else n for n in pb.networks)
        return replace(pb, store=None, control=self.name, networks=nets)

    def evidence(self, pb: Playbook, facts: dict[str, Any]) -> int:
        return 2 if any(f.marker_lab == pb.name for f in facts.values()) else 0

    def host_row(self, pb: Playbook, facts: Any) -> dict[str, Any]:
        return {"swarm": role(facts), "vtep": facts.address or None}

    def status_text(self, rows: dict[str, dict[str, Any]]) -> str:
        return "swarm: " + ", ".join(f"{h} {v['swarm']}" + (f" (VTEP {v['vtep']})" if v.get("vtep") else "")
                                     for h, v in rows.items())


PLANE = SwarmPlan()
