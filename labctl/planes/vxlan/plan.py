"""Plain Linux VXLAN as the overlay's control plane, for any Docker engine (pure: facts parsed, steps planned).

labctl itself makes, per overlay network and docker host, a Linux VXLAN device `vxl<VNI>` (UDP 4789, `local` = the
host's underlay address, no multicast) with one all-zero FDB entry per other docker host (head-end replication:
broadcast and unknown frames go to every peer, and the device learns the remote MACs from what comes back). Docker
attaches to it as a **macvlan network whose parent is the VXLAN device**: containers get macvlan interfaces on the
device, so their frames leave in VXLAN. Macvlan rather than a bridge with the VXLAN port: the host needs no address
on the overlay (a bridge network gives every host's bridge the same gateway address, answering ARP from all hosts at
once) and Docker's macvlan driver does no NAT or isolation rules of its own. Addresses never collide: each host's
Docker allocates from its own disjoint part of the subnet (the per-host ranges macvlan networks already get).

What this plane does not give: Docker's DNS knows only the containers of its own host here, so names of containers
on other hosts do not resolve (verify expects exactly that); a macvlan container cannot reach its own host through
the overlay.

Each device carries the alias `labctl:<lab>:<network>`, so leftovers (a killed run, a renamed network, a lab
switched to another plane) are found and removed by the next `up` or `down`.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from dataclasses import dataclass, replace
from typing import Any

from labctl.model.playbook import Network, Playbook
from labctl.plan.lab import Step
from labctl.planes.base import Engine, PlanePlan
from labctl.planes.vxlan import TRAITS

PREFIX = "vxl"
ALIAS = "labctl:"
DSTPORT = 4789
DEVICE_RE = re.compile(r"^vxl(\d{1,8})$")
ANY_MAC = "00:00:00:00:00:00"
FACTS_SCRIPT = ("ip -d -o link show type vxlan 2>/dev/null; echo ----labctl-fdb----; "
                f"bridge fdb show 2>/dev/null | grep '^{ANY_MAC} dev {PREFIX}'")


def device(vni: int) -> str:
    return f"{PREFIX}{int(vni)}"


def alias(lab: str, network: str) -> str:
    return f"{ALIAS}{lab}:{network}"


@dataclass(frozen=True)
class Device:
    name: str
    vni: int
    local: str
    dev: str
    dstport: int
    up: bool
    alias: str
    peers: tuple[str, ...] = ()   # dst of the all-zero FDB entries

    def lab(self) -> str | None:
        """The lab whose labctl made it, from its alias; None when not labctl's."""
        if not self.alias.startswith(ALIAS):
            return None
        return self.alias[len(ALIAS):].rsplit(":", 1)[0]


LINE_RE = re.compile(r"^\d+:\s+([^:@\s]+)(?:@\S+)?:\s+<([^>]*)>")


def parse_facts(text: str) -> dict[str, Device]:
    """FACTS_SCRIPT's output (captured on Debian 12 here) as name -> Device."""
    links, _, fdb = text.partition("----labctl-fdb----")
    peers: dict[str, list[str]] = {}
    for line in fdb.splitlines():
        m = re.match(rf"^{ANY_MAC} dev (\S+) dst (\S+)", line.strip())
        if m:
            peers.setdefault(m.group(1), []).append(m.group(2))
    result = {}
    for line in links.splitlines():
        m = LINE_RE.match(line)
        vni = re.search(r"\bvxlan id (\d+)", line)
        if not m or not vni:
            continue
        local = re.search(r"\blocal (\S+)", line)
        dev = re.search(r"\bvxlan id \d+ .*?\bdev (\S+)", line)
        port = re.search(r"\bdstport (\d+)", line)
        al = re.search(r"\balias (\S+)", line)
        name = m.group(1)
        result[name] = Device(name=name, vni=int(vni.group(1)), local=local.group(1) if local else "",
                              dev=dev.group(1) if dev else "", dstport=int(port.group(1)) if port else 0,
                              up="UP" in m.group(2).split(","), alias=al.group(1) if al else "",
                              peers=tuple(sorted(peers.get(name, []))))
    return result


@dataclass(frozen=True)
class Wanted:
    network: str
    vni: int
    local: str
    dev: str
    peers: tuple[str, ...]

    @property
    def name(self) -> str:
        return device(self.vni)


def wanted(pb: Playbook, host: str, addresses: dict[str, str], iface: str) -> list[Wanted]:
    """The devices a docker host needs: one per overlay network of a `control: vxlan` playbook."""
    if pb.control != "vxlan":
        return []
    peers = tuple(sorted(a for h, a in addresses.items() if h != host))
    return [Wanted(n.name, n.vni, addresses[host], iface, peers) for n in pb.networks if n.vni is not None]


def _create(pb: Playbook, w: Wanted) -> str:
    local, d = str(ipaddress.IPv4Address(w.local)), shlex.quote(w.name)
    parts = [f"ip link add {d} type vxlan id {int(w.vni)} dstport {DSTPORT} local {local} dev {shlex.quote(w.dev)}",
             f"ip link set {d} alias {shlex.quote(alias(pb.name, w.network))}"]
    parts += [f"bridge fdb append {ANY_MAC} dev {d} dst {ipaddress.IPv4Address(p)}" for p in w.peers]
    parts.append(f"ip link set {d} up")
    return " && ".join(parts)


def problems(pb: Playbook, host: str, found: dict[str, Device], want: list[Wanted]) -> list[str]:
    """Devices labctl would need and cannot take: a device of that name that is not labctl's (or another lab's)."""
    result = []
    for w in want:
        d = found.get(w.name)
        if d is None:
            continue
        owner = d.lab()
        if owner is None and not (d.vni == w.vni and not d.alias):  # a nameless vxl<VNI> of ours: half-made
            result.append(f"[{host}] networks.{w.network}: a VXLAN device {w.name} exists there and is not labctl's "
                          f"(alias {d.alias or 'none'}): remove it, or give the network another VNI "
                          "(options: com.docker.network.driver.overlay.vxlanid_list)")
        elif owner is not None and owner != pb.name:
            result.append(f"[{host}] networks.{w.network}: VXLAN device {w.name} belongs to lab {owner!r}: run "
                          "`labctl down` with that lab's playbook first, or use another VNI")
    return result


def plan_devices(pb: Playbook, host: str, found: dict[str, Device], want: list[Wanted]) -> list[Step]:
    """Steps that make the host's labctl VXLAN devices exactly `want`: create, repair (alias, state, FDB), recreate
    (VNI, local address, parent device or port changed; the lab's containers on its network go first and come back
    with the container plan), and remove this lab's devices that nothing wants any more."""
    steps: list[Step] = []
    label = shlex.quote(f"label=labctl.lab={pb.name}")
    for w in want:
        d, q, entry = found.get(w.name), shlex.quote(w.name), f"networks.{w.network}"
        if d is None:
            steps.append(Step(host, f"vxlan {w.name}", _create(pb, w),
                              f"VNI {w.vni}, local {w.local}, peers {', '.join(w.peers) or 'none'}", entry))
            continue
        if (d.vni, d.local, d.dev, d.dstport) != (w.vni, w.local, w.dev, DSTPORT):
            drop = (f"docker ps -aq --filter {label} --filter {shlex.quote(f'network={w.network}')} | "
                    "xargs -r docker rm -f >/dev/null; ")
            steps.append(Step(host, f"vxlan {w.name}", f"{drop}ip link del {q} && {_create(pb, w)}",
                              "settings changed: recreated", entry))
            continue
        fixes = []
        if d.alias != alias(pb.name, w.network):
            fixes.append(f"ip link set {q} alias {shlex.quote(alias(pb.name, w.network))}")
        fixes += [f"bridge fdb append {ANY_MAC} dev {q} dst {p}" for p in w.peers if p not in d.peers]
        fixes += [f"bridge fdb del {ANY_MAC} dev {q} dst {shlex.quote(p)}" for p in d.peers if p not in w.peers]
        if not d.up:
            fixes.append(f"ip link set {q} up")
        steps.append(Step(host, f"vxlan {w.name}", " && ".join(fixes) if fixes else None,
                          "repaired (alias, FDB, state)" if fixes else "exists as described", entry))
    names = {w.name for w in want}
    for d in sorted(found.values(), key=lambda x: x.name):
        if d.lab() == pb.name and d.name not in names:
            steps.append(Step(host, f"vxlan {d.name}", f"ip link del {shlex.quote(d.name)}",
                              "not in the playbook (or another control plane): removed", f"networks.{d.alias}"))
    return steps


def faults(want: list[Wanted], found: dict[str, Device], host_of: dict[str, str]) -> list[str]:
    """What is wrong with a host's VXLAN devices, for verify's causes (host_of: underlay address -> host)."""
    result = []
    for w in want:
        d = found.get(w.name)
        if d is None:
            result.append(f"VXLAN device {w.name} (VNI {w.vni}) of {w.network} is missing")
            continue
        if not d.up:
            result.append(f"VXLAN device {w.name} of {w.network} is down")
        for p in w.peers:
            if p not in d.peers:
                result.append(f"{w.name} has no FDB entry for {host_of.get(p, p)} ({p}): frames to that host are "
                              "never sent")
    return result


def teardown(lab: str, found: dict[str, Device]) -> list[str]:
    """Commands that remove every VXLAN device of this lab on a host."""
    return [f"ip link del {shlex.quote(d.name)}" for d in sorted(found.values(), key=lambda x: x.name)
            if d.lab() == lab]


def as_macvlan(net: Network) -> Network:
    """How Docker sees an overlay network of the vxlan plane: macvlan on the VXLAN device, on every docker host."""
    assert net.vni is not None
    opts = tuple((k, v) for k, v in net.options if k != "com.docker.network.driver.overlay.vxlanid_list")
    return replace(net, driver="macvlan", parent=device(net.vni), options=opts)


# ---------------------------------------------------------------- the plane's pure half


class VxlanPlan(PlanePlan):
    traits = TRAITS
    facts_script = FACTS_SCRIPT
    requested_why = "requested in the playbook (labctl's own VXLAN devices; any engine)"

    def parse_facts(self, host: str, text: str) -> dict[str, Device]:
        return parse_facts(text)

    def refusals(self, store_backend: str | None, engines: list[Engine]) -> dict[str, str]:
        return {e.host: "no Docker engine answers" for e in engines if not e.version}

    def effective(self, pb: Playbook) -> Playbook:
        """Docker sees each overlay as macvlan on labctl's VXLAN device."""
        nets = tuple(as_macvlan(n) if n.driver == "overlay" and n.vni is not None else n for n in pb.networks)
        return replace(pb, store=None, control=self.name, networks=nets)

    def cause(self, c: Any, pb: Playbook, diag: Any) -> str | None:
        """A check on one of this plane's overlays: a faulty device (diag.plane: host -> faults), else what drops
        VXLAN between the hosts."""
        if c.via == "name" or next((n.vni for n in pb.networks if n.name == c.network), None) is None:
            return None
        faults: dict[str, list[str]] = diag.plane or {}
        faulty = [h for h in (c.src_host, c.dst_host) if h and faults.get(h)]
        if faulty:  # a device down takes its macvlan containers down with it, on the same host too
            return f"{faulty[0]}: {faults[faulty[0]][0]}; `labctl up` repairs it"
        if c.src_host == c.dst_host:
            return None
        for host in (c.src_host, c.dst_host):
            if host and diag.vxlan_drops.get(host):
                return f"VXLAN (UDP 4789) is dropped on {host} by its firewall: {diag.vxlan_drops[host][0]}"
        return (f"VXLAN (UDP 4789) between {c.src_host} and {c.dst_host} is blocked or lost, though both VXLAN "
                "devices are up with their FDB entries")

    def vni_of(self, network: dict[str, Any]) -> int | None:
        """A macvlan network whose parent is labctl's device vxl<VNI>."""
        parent = DEVICE_RE.match(str((network.get("Options") or {}).get("parent", "")))
        return int(parent.group(1)) if network.get("Driver") == "macvlan" and parent else None

    def evidence(self, pb: Playbook, facts: dict[str, Any]) -> int:
        return 2 if any(d.lab() == pb.name for devs in facts.values() for d in devs.values()) else 0

    def host_row(self, pb: Playbook, facts: Any) -> dict[str, Any]:
        devs = [d for d in facts.values() if d.lab() == pb.name]
        return {"vtep": devs[0].local if devs else None,
                "vxlan": [{"device": d.name, "vni": d.vni, "up": d.up, "peers": list(d.peers)} for d in devs]}

    def status_text(self, rows: dict[str, dict[str, Any]]) -> str:
        parts = []
        for h, v in rows.items():
            devs = "; ".join(f"{d['device']} VNI {d['vni']} {'up' if d['up'] else 'DOWN'}, FDB "
                             f"{', '.join(d['peers']) or 'EMPTY'}" for d in v.get("vxlan", []))
            parts.append(f"{h} (VTEP {v.get('vtep') or '-'}): {devs or 'no device'}")
        return " | ".join(parts)


PLANE = VxlanPlan()
