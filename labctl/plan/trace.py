"""`labctl trace SRC DST`: the path of one ping as the tutorials draw it, from facts found on the hosts, and what
captures taken during the ping prove. Pure: the executor gathers the facts (FACTS_SCRIPT), runs the captures and
the ping, and hands the decoded captures (`tcpdump -r FILE -nn -e -v`) back here.

Paths by network:
- overlay (cluster store or swarm): the container's veth, its peer on br0 in the overlay's namespace, vxlan0 there
  (VNI, UDP 4789; the FDB names the remote VTEP), the host's underlay interface, UDP between the two VTEPs, and
  the same backwards on the other host;
- overlay on the vxlan control plane: the container's macvlan on labctl's device vxl<VNI> in the host, the
  underlay, and back;
- macvlan: the container's macvlan on the underlay interface: the frames cross the underlay as they are, with the
  containers' own MAC and IP addresses, no encapsulation;
- a bridge on one host: veth, the host's bridge, veth;
- anything else (an address off the container's networks): veth, the bridge as the default gateway, MASQUERADE
  on the way out of the host's underlay interface (the source becomes the host's address).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from labctl.facts import Answers, Fact, answers, fact

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    mac: str
    kind: str                 # veth | macvlan | vxlan | bridge | device
    master: str = ""
    peer_index: int | None = None     # the "@ifN" of a veth or macvlan: the other end / the parent's index
    vni: int | None = None
    dstport: int | None = None
    mtu: int = 0
    addresses: tuple[str, ...] = ()


LINK_RE = re.compile(r"^(\d+): ([^:@\s]+)(?:@if(\d+)|@(\S+))?: <[^>]*> mtu (\d+)(.*)$")


def parse_links(links: str, addrs: str) -> dict[str, Link]:
    """`ip -o -d link` and `ip -o -4 addr` output: interface name -> Link."""
    by_name_addr: dict[str, list[str]] = {}
    for line in addrs.splitlines():
        m = re.match(r"^\d+: (\S+)\s+inet (\d+\.\d+\.\d+\.\d+/\d+)", line.strip())
        if m:
            by_name_addr.setdefault(m.group(1), []).append(m.group(2))
    result = {}
    for line in links.splitlines():
        m = LINK_RE.match(line.strip())
        if not m:
            continue
        rest = m.group(6)
        mac = re.search(r"link/ether ([0-9a-f:]{17})", rest)
        master = re.search(r" master (\S+)", rest)
        vni = re.search(r"\bvxlan id (\d+)", rest)
        port = re.search(r"\bdstport (\d+)", rest)
        kind = _kind(rest)
        result[m.group(2)] = Link(int(m.group(1)), m.group(2), mac.group(1) if mac else "", kind,
                                  master.group(1) if master else "", int(m.group(3)) if m.group(3) else None,
                                  int(vni.group(1)) if vni else None, int(port.group(1)) if port else None,
                                  int(m.group(5)), tuple(by_name_addr.get(m.group(2), [])))
    return result


def _kind(rest: str) -> str:
    """The link type `ip -o -d link` prints after the link/ether line: veth, macvlan, vxlan, bridge."""
    segments = [x.strip() for x in rest.split("\\")]
    for i, seg in enumerate(segments[:-1]):
        if seg.startswith("link/"):
            word = (segments[i + 1].split() or [""])[0]
            return word if word in ("veth", "macvlan", "vxlan", "bridge") else "device"
    return "device"


def parse_fdb(text: str) -> dict[str, str]:
    """`bridge fdb show dev vxlan0`: MAC -> remote VTEP address (entries with a dst)."""
    found = {}
    for line in text.splitlines():
        m = re.match(r"^([0-9a-f:]{17}) dst (\d+\.\d+\.\d+\.\d+)", line.strip())
        if m:
            found[m.group(1)] = m.group(2)
    return found


# ------------------------------------------------------------------ facts from a host


@dataclass
class ContainerFacts:
    name: str
    pid: int
    links: dict[str, Link]
    route: str = ""            # `ip route get DST` from the source

    def by_address(self, address: str) -> Link | None:
        return next((lk for lk in self.links.values() if any(a.split("/")[0] == address for a in lk.addresses)),
                    None)


@dataclass
class HostFacts:
    host: str
    containers: dict[str, ContainerFacts] = field(default_factory=dict)
    underlay: Link | None = None
    links: dict[str, Link] = field(default_factory=dict)          # the host's own interfaces
    overlay_ns: str = ""                                           # /run/docker/netns/1-<id>
    overlay_links: dict[str, Link] = field(default_factory=dict)
    overlay_fdb: dict[str, str] = field(default_factory=dict)
    vxlan_fdb: dict[str, list[str]] = field(default_factory=dict)  # labctl's vxl<VNI> -> peers
    nat: list[str] = field(default_factory=list)                    # MASQUERADE rules of POSTROUTING
    tools: list[str] = field(default_factory=list)                  # missing: tcpdump


def _vxlan_peers(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("dev "):
            current = line[4:]
            found[current] = []
        elif current and line.strip():
            found[current].append(line.strip())
    return found


def _lines(text: str) -> list[str]:
    return [x for x in text.splitlines() if x.strip()]


TOOLS = fact("trace.tools", "command -v tcpdump >/dev/null || echo missing-tcpdump",
             lambda t: ["tcpdump"] if "missing-tcpdump" in t else [])
HOST_LINKS = fact("trace.host.links", "ip -o -d link", str)
HOST_ADDRS = fact("trace.host.addrs", "ip -o -4 addr", str)
OVERLAY_LINKS = fact("trace.overlay.links", '[ -n "$ons" ] && nsenter --net="$ons" ip -o -d link', str)
OVERLAY_FDB = fact("trace.overlay.fdb", '[ -n "$ons" ] && nsenter --net="$ons" bridge fdb show dev vxlan0', str)
VXLAN_PEERS = fact("trace.vxlan", "for d in $(ip -o link show type vxlan | awk -F': ' '{print $2}' | cut -d@ -f1); "
                                  "do echo \"dev $d\"; bridge fdb show dev \"$d\" | "
                                  "awk '$1 == \"00:00:00:00:00:00\" {print $3}'; done", _vxlan_peers)
NAT = fact("trace.nat", "iptables -t nat -S POSTROUTING 2>/dev/null | grep MASQUERADE", _lines)


def _overlay_ns(network: str) -> Fact[str]:
    """Sets $ons for the two facts after it: the network's namespace on this host (the newest epoch)."""
    return fact("trace.overlay.ns", f"id=$(docker network inspect -f '{{{{.Id}}}}' {network} 2>/dev/null | "
                                    "cut -c1-10); ons=''; [ -n \"$id\" ] && ons=$(ls -d /run/docker/netns/*-\"$id\" "
                                    '2>/dev/null | tail -n 1); echo "$ons"', str.strip)


def _container(i: int, name: str, destination: str) -> tuple[Fact[str], Fact[str], Fact[str], Fact[str]]:
    """Its PID (which sets $p for the three after it), links, addresses and route to the destination."""
    inside = 'nsenter -t "$p" -n'
    guard = '[ "${p:-0}" -gt 0 ] &&'
    return (fact(f"trace.c{i}.pid", f"p=$(docker inspect -f '{{{{.State.Pid}}}}' {name} 2>/dev/null); echo \"$p\"",
                 str.strip),
            fact(f"trace.c{i}.links", f"{guard} {inside} ip -o -d link", str),
            fact(f"trace.c{i}.addrs", f"{guard} {inside} ip -o -4 addr", str),
            fact(f"trace.c{i}.route", f"{guard} {inside} ip route get {destination} 2>&1 | head -n 1", str.strip))


def trace_facts(containers: list[str], network: str, destination: str) -> list[Fact[Any]]:
    """One round trip per host: each container's PID, links, addresses (and the route to the destination), the
    host's links and underlay, the network's overlay namespace with its vxlan0 FDB, labctl's VXLAN devices' FDB
    peers, the NAT rules."""
    for value in [*containers, network, destination]:
        if not NAME_RE.match(value):
            raise ValueError(f"not a plain name or address: {value!r}")
    per_container = [f for i, c in enumerate(containers) for f in _container(i, c, destination)]
    return [TOOLS, *per_container, HOST_LINKS, HOST_ADDRS, _overlay_ns(network), OVERLAY_LINKS, OVERLAY_FDB,
            VXLAN_PEERS, NAT]


def host_facts(a: Answers, containers: list[str], underlay: str) -> HostFacts:
    """A host's answers to trace_facts(containers, ...); underlay: the underlay interface's name."""
    facts = HostFacts(a.host, tools=a[TOOLS])
    for i, name in enumerate(containers):
        pid_f, links_f, addrs_f, route_f = _container(i, name, "0.0.0.0")
        pid = int(a[pid_f]) if a[pid_f].isdigit() else 0
        facts.containers[name] = ContainerFacts(name, pid, parse_links(a[links_f], a[addrs_f]) if pid else {},
                                                a[route_f])
    facts.links = parse_links(a[HOST_LINKS], a[HOST_ADDRS])
    facts.underlay = facts.links.get(underlay)
    ns = a.get(_overlay_ns("-"), "")
    if ns:
        facts.overlay_ns = ns
        facts.overlay_links, facts.overlay_fdb = parse_links(a[OVERLAY_LINKS], ""), parse_fdb(a[OVERLAY_FDB])
    facts.vxlan_fdb, facts.nat = a[VXLAN_PEERS], a[NAT]
    return facts


def parse_facts(host: str, out: str, containers: list[str], network: str, underlay: str) -> HostFacts:
    """A host's output of trace_facts' script (captured) as HostFacts."""
    return host_facts(answers(host, trace_facts(containers, network, "0.0.0.0"), out), containers, underlay)


# ------------------------------------------------------------------ the path


@dataclass
class Hop:
    where: str                 # "c1", "node1", "node1 overlay namespace 1-214ac8cfee"
    what: str                  # "eth0 (veth)", "vxlan0 VNI 256, UDP 4789"
    mac: str = ""
    ip: str = ""
    note: str = ""
    capture: str = ""          # name of the capture point taken here ("" none)


@dataclass(frozen=True)
class CapturePoint:
    name: str                  # file stem: "c1-eth0", "node1-eth1"
    host: str
    pid: int                   # 0: the host's namespace; else a container's
    iface: str
    bpf: str                   # tcpdump filter


@dataclass
class Path:
    kind: str                  # overlay | vxlan | macvlan | bridge | nat
    src: str
    dst: str
    src_ip: str
    dst_ip: str
    network: str
    vni: int | None
    hops: list[Hop]
    captures: list[CapturePoint]
    vteps: tuple[str, str] | None = None     # (source underlay, destination underlay) when encapsulated
    notes: list[str] = field(default_factory=list)


def _link_text(lk: Link) -> str:
    return f"{lk.name} ({lk.kind}, mtu {lk.mtu})"


def _capture(name: str, host: str, pid: int, iface: str, bpf: str) -> CapturePoint:
    return CapturePoint(re.sub(r"[^A-Za-z0-9_.-]", "_", name), host, pid, iface, bpf)


def build_path(kind: str, network: str, vni: int | None, src: str, src_host: HostFacts, src_ip: str,
               dst: str, dst_host: HostFacts | None, dst_ip: str) -> Path:
    """The hops and capture points of one ping from src (a container of src_host) to dst_ip (a container of
    dst_host, or an address)."""
    sc = src_host.containers[src]
    route = parse_route(sc.route)
    s_link: Link | None
    if kind == "nat" and route.get("dev") in sc.links:   # off the container's networks: where its route goes
        s_link = sc.links[route["dev"]]
        src_ip = route.get("src", src_ip)
        if _bridge_of(src_host, s_link) is None:
            kind = "routed"
    else:
        s_link = sc.by_address(src_ip)
    path = Path(kind, src, dst, src_ip, dst_ip, network, vni, [], [])
    icmp = f"icmp and host {src_ip} and host {dst_ip}"
    if s_link is None:
        path.notes.append(f"{src} has no interface with {src_ip}")
        return path
    if kind in ("nat", "routed"):
        path.notes.append(f"{src}'s route to {dst_ip}: {sc.route or '?'}")
    cap = _capture(f"{src}-{s_link.name}", src_host.host, sc.pid, s_link.name, icmp)
    path.captures.append(cap)
    path.hops.append(Hop(src, _link_text(s_link), s_link.mac, src_ip, _src_note(kind, s_link, src_host), cap.name))
    dc = dst_host.containers.get(dst) if dst_host is not None else None
    d_link = dc.by_address(dst_ip) if dc is not None else None
    if kind in ("overlay", "vxlan", "macvlan") and dst_host is not None and dst_host.host != src_host.host:
        _across(path, kind, src_host, dst_host, dst_ip, d_link)
    elif kind in ("overlay", "vxlan", "macvlan") and dc is not None:
        local = {"overlay": f"br0 in the overlay namespace {src_host.overlay_ns.rsplit('/', 1)[-1]}",
                 "vxlan": f"labctl's device vxl{vni} (macvlan bridge mode)",
                 "macvlan": f"the macvlan parent {src_host.underlay.name if src_host.underlay else '?'}"}[kind]
        path.hops.append(Hop(src_host.host, local, "", "", "both containers on this host: switched locally, "
                             "nothing is encapsulated and nothing crosses the underlay"))
        path.notes.append(f"{src} and {dst} are both on {src_host.host}: the overlay's VXLAN is not used")
    elif kind == "bridge" or (dst_host is not None and dst_host.host == src_host.host and dc is not None):
        bridge = _bridge_of(src_host, s_link)
        if bridge is not None:
            c = _capture(f"{src_host.host}-{bridge.name}", src_host.host, 0, bridge.name, icmp)
            path.captures.append(c)
            path.hops.append(Hop(src_host.host, f"{bridge.name} (bridge on the host, mtu {bridge.mtu})",
                                 bridge.mac, ", ".join(bridge.addresses), "switched on the host: no encapsulation, "
                                 "the frame never leaves it", c.name))
    elif kind == "routed":
        _routed(path, src_host, dst_host, route)
    else:
        _nat(path, src_host, dst_host, s_link)
    if dc is not None and d_link is not None and dst_host is not None:
        c = _capture(f"{dst}-{d_link.name}", dst_host.host, dc.pid, d_link.name, icmp)
        path.captures.append(c)
        path.hops.append(Hop(dst, _link_text(d_link), d_link.mac, dst_ip, "", c.name))
    return path


def _src_note(kind: str, lk: Link, host: HostFacts) -> str:
    if lk.kind == "veth" and kind == "overlay":
        peer = next((x for x in host.overlay_links.values() if x.index == lk.peer_index), None)
        ns = host.overlay_ns.rsplit("/", 1)[-1]
        return f"veth; its peer {peer.name if peer else '?'} sits on br0 in the overlay namespace {ns}"
    if lk.kind == "macvlan":
        parent = next((x for x in host.links.values() if x.index == lk.peer_index), None)
        return f"macvlan on the host's {parent.name if parent else '?'}"
    peer = next((x for x in host.links.values() if x.index == lk.peer_index), None)
    return f"veth; its peer {peer.name if peer else '?'} is on {peer.master if peer and peer.master else '?'}"


def parse_route(text: str) -> dict[str, str]:
    """`ip route get DST`'s first line: dev, via, src."""
    found = {}
    for key in ("dev", "via", "src"):
        m = re.search(rf"\b{key} (\S+)", text)
        if m:
            found[key] = m.group(1)
    return found


def _routed(path: Path, src: HostFacts, dst: HostFacts | None, route: dict[str, str]) -> None:
    """Off the container's networks through a gateway on a network that is no host bridge (macvlan): no NAT on
    this host; the gateway must exist on the underlay."""
    su = src.underlay
    gateway = route.get("via", "(no gateway: on-link)")
    if su is not None:
        c = _capture(f"{src.host}-{su.name}", src.host, 0, su.name, f"icmp and host {path.dst_ip} or arp")
        path.captures.append(c)
        path.hops.append(Hop(src.host, f"{su.name} (underlay, mtu {su.mtu})", su.mac,
                             su.addresses[0].split("/")[0] if su.addresses else "",
                             f"the container's gateway {gateway} must answer on the underlay; no NAT here", c.name))
    if dst is not None and dst.underlay is not None and dst.host != src.host:
        c = _capture(f"{dst.host}-{dst.underlay.name}", dst.host, 0, dst.underlay.name, f"icmp and host {path.dst_ip}")
        path.captures.append(c)
        path.hops.append(Hop(dst.host, f"{dst.underlay.name} (underlay)", dst.underlay.mac, path.dst_ip, "", c.name))


def _bridge_of(host: HostFacts, lk: Link) -> Link | None:
    peer = next((x for x in host.links.values() if x.index == lk.peer_index), None)
    return host.links.get(peer.master) if peer is not None and peer.master else None


def _across(path: Path, kind: str, src: HostFacts, dst: HostFacts, dst_ip: str, d_link: Link | None) -> None:
    su, du = src.underlay, dst.underlay
    s_addr = su.addresses[0].split("/")[0] if su and su.addresses else "?"
    d_addr = du.addresses[0].split("/")[0] if du and du.addresses else "?"
    if kind == "overlay":
        vx = src.overlay_links.get("vxlan0")
        br = src.overlay_links.get("br0")
        remote = src.overlay_fdb.get(d_link.mac) if d_link is not None else None
        ns = src.overlay_ns.rsplit("/", 1)[-1]
        path.hops.append(Hop(f"{src.host} overlay namespace {ns}",
                             f"br0 (bridge, {br.mac if br else '?'}) -> vxlan0 (VNI {vx.vni if vx else '?'}, "
                             f"UDP {vx.dstport if vx else '?'})", vx.mac if vx else "", "",
                             f"FDB: {d_link.mac if d_link else '?'} -> VTEP {remote or '(no entry)'}"))
    elif kind == "vxlan":
        dev = f"vxl{path.vni}"
        lk = src.links.get(dev)
        path.hops.append(Hop(src.host, f"{dev} (labctl's VXLAN device, VNI {path.vni}, UDP "
                                       f"{lk.dstport if lk else '?'})", lk.mac if lk else "", "",
                             f"FDB: all-zero entries to {', '.join(src.vxlan_fdb.get(dev, [])) or '(none)'}"))
    bpf = (f"udp port 4789 and host {d_addr}" if kind in ("overlay", "vxlan")
           else f"icmp and host {path.src_ip} and host {dst_ip}")
    note = ("encapsulated: UDP 4789 to the remote VTEP" if kind in ("overlay", "vxlan")
            else "no encapsulation: the container's own frame, with its MAC and IP, crosses the underlay")
    if su is not None:
        c = _capture(f"{src.host}-{su.name}", src.host, 0, su.name, bpf)
        path.captures.append(c)
        path.hops.append(Hop(src.host, f"{su.name} (underlay, mtu {su.mtu})", su.mac, s_addr, note, c.name))
    if du is not None:
        bpf_back = (f"udp port 4789 and host {s_addr}" if kind in ("overlay", "vxlan") else bpf)
        c = _capture(f"{dst.host}-{du.name}", dst.host, 0, du.name, bpf_back)
        path.captures.append(c)
        path.hops.append(Hop(dst.host, f"{du.name} (underlay, mtu {du.mtu})", du.mac, d_addr, "", c.name))
    if kind == "overlay":
        ns = dst.overlay_ns.rsplit("/", 1)[-1]
        vx = dst.overlay_links.get("vxlan0")
        path.hops.append(Hop(f"{dst.host} overlay namespace {ns}",
                             f"vxlan0 (VNI {vx.vni if vx else '?'}) -> br0 -> veth", vx.mac if vx else "", ""))
    elif kind == "vxlan":
        lk = dst.links.get(f"vxl{path.vni}")
        path.hops.append(Hop(dst.host, f"vxl{path.vni} (VNI {path.vni}) -> macvlan", lk.mac if lk else "", ""))
    if kind in ("overlay", "vxlan"):
        path.vteps = (s_addr, d_addr)


def _nat(path: Path, src: HostFacts, dst: HostFacts | None, s_link: Link) -> None:
    bridge = _bridge_of(src, s_link)
    su = src.underlay
    s_addr = su.addresses[0].split("/")[0] if su and su.addresses else "?"
    if bridge is not None:
        c = _capture(f"{src.host}-{bridge.name}", src.host, 0, bridge.name, f"icmp and host {path.dst_ip}")
        path.captures.append(c)
        path.hops.append(Hop(src.host, f"{bridge.name} (bridge, the container's default gateway)", bridge.mac,
                             ", ".join(bridge.addresses), "routed by the host", c.name))
    rule = next((r for r in src.nat if bridge is not None and f"! -o {bridge.name}" in r), "")
    if su is not None:
        c = _capture(f"{src.host}-{su.name}", src.host, 0, su.name, f"icmp and host {path.dst_ip}")
        path.captures.append(c)
        path.hops.append(Hop(src.host, f"{su.name} (underlay, mtu {su.mtu})", su.mac, s_addr,
                             f"MASQUERADE: the source {path.src_ip} becomes {s_addr}"
                             + (f" ({rule})" if rule else ""), c.name))
    if dst is not None and dst.underlay is not None and dst.host != src.host:
        du = dst.underlay
        c = _capture(f"{dst.host}-{du.name}", dst.host, 0, du.name, f"icmp and host {path.dst_ip}")
        path.captures.append(c)
        path.hops.append(Hop(dst.host, f"{du.name} (underlay)", du.mac, path.dst_ip, "", c.name))
    path.kind = "nat"


# ------------------------------------------------------------------ what the captures show


@dataclass(frozen=True)
class Packet:
    src_mac: str
    dst_mac: str
    src: str
    dst: str
    icmp: str                          # "echo request" | "echo reply" | ""
    outer: tuple[str, str, int, int] | None = None   # (src, dst, udp dport, vni) when VXLAN


PKT_HEAD = re.compile(r"^\S+ ([0-9a-f:]{17}) > ([0-9a-f:]{17}), ethertype IPv4")
INNER_HEAD = re.compile(r"^([0-9a-f:]{17}) > ([0-9a-f:]{17}), ethertype IPv4")
ICMP_LINE = re.compile(r"^(\d+\.\d+\.\d+\.\d+) > (\d+\.\d+\.\d+\.\d+): ICMP (echo request|echo reply)")
ARP_LINE = re.compile(r"ethertype ARP .*(?:Request who-has (\d+\.\d+\.\d+\.\d+) tell (\d+\.\d+\.\d+\.\d+)|"
                      r"Reply (\d+\.\d+\.\d+\.\d+) is-at)")
VXLAN_LINE = re.compile(r"^(\d+\.\d+\.\d+\.\d+)\.\d+ > (\d+\.\d+\.\d+\.\d+)\.(\d+): VXLAN, .*vni (\d+)")


def parse_tcpdump(text: str) -> list[Packet]:
    """`tcpdump -r FILE -nn -e -v` output: ICMP echoes, plain or inside VXLAN."""
    packets: list[Packet] = []
    outer_macs: tuple[str, str] | None = None
    vxlan: tuple[str, str, int, int] | None = None
    inner_macs: tuple[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        head = PKT_HEAD.match(line)
        if head:
            outer_macs, vxlan, inner_macs = (head.group(1), head.group(2)), None, None
            continue
        vx = VXLAN_LINE.match(line)
        if vx:
            vxlan = (vx.group(1), vx.group(2), int(vx.group(3)), int(vx.group(4)))
            continue
        inner = INNER_HEAD.match(line)
        if inner:
            inner_macs = (inner.group(1), inner.group(2))
            continue
        icmp = ICMP_LINE.match(line)
        if icmp and outer_macs is not None:
            macs = inner_macs or outer_macs
            packets.append(Packet(macs[0], macs[1], icmp.group(1), icmp.group(2), icmp.group(3), vxlan))
    return packets


def parse_arp(text: str) -> tuple[list[tuple[str, str]], set[str]]:
    """ARP in `tcpdump -nn -e -v` output: (who-has, tell) of each request, and the addresses that were answered."""
    asked, answered = [], set()
    for line in text.splitlines():
        m = ARP_LINE.search(line)
        if m and m.group(1):
            asked.append((m.group(1), m.group(2)))
        elif m and m.group(3):
            answered.add(m.group(3))
    return asked, answered


@dataclass
class Seen:
    point: CapturePoint
    requests: int
    replies: int
    outer: list[tuple[str, str, int, int]]
    inner_macs: list[tuple[str, str]]
    sources: list[str]
    arp_unanswered: dict[str, int] = field(default_factory=dict)   # address asked for -> times, never answered


def seen_at(point: CapturePoint, packets: list[Packet], path: Path,
            arp: tuple[list[tuple[str, str]], set[str]] = ([], set())) -> Seen:
    """What a capture point saw of this trace's echoes (after NAT the request's source is the host's address), and
    the source's ARP requests that no one answered."""
    ours = [p for p in packets if path.dst_ip in (p.src, p.dst)]
    asked, answered = arp
    unanswered: dict[str, int] = {}
    for who, tell in asked:
        if tell == path.src_ip and who not in answered:
            unanswered[who] = unanswered.get(who, 0) + 1
    return Seen(point, sum(p.icmp == "echo request" for p in ours), sum(p.icmp == "echo reply" for p in ours),
                sorted({p.outer for p in ours if p.outer}), sorted({(p.src_mac, p.dst_mac) for p in ours}),
                sorted({p.src for p in ours if p.icmp == "echo request"}), unanswered)


def proof(path: Path, seen: list[Seen]) -> list[str]:
    """Sentences the captures prove."""
    lines = []
    outer = sorted({o for s in seen for o in s.outer})
    if path.kind in ("overlay", "vxlan") and path.vteps is None:
        lines.append("on one host: " + ("no VXLAN packet, as expected" if not outer else "unexpected VXLAN packets"))
    elif path.kind in ("overlay", "vxlan"):
        if outer:
            for src, dst, port, vni in outer:
                lines.append(f"VXLAN on the wire: {src} -> {dst}, UDP {port}, VNI {vni}")
            if path.vteps and not any({o[0], o[1]} == set(path.vteps) for o in outer):
                lines.append(f"unexpected: the outer addresses are not the two VTEPs {path.vteps[0]} and "
                             f"{path.vteps[1]}")
        else:
            lines.append("no VXLAN packet of this ping was seen on the underlay")
    elif path.kind == "macvlan":
        under = [s for s in seen if s.point.pid == 0]
        if any(s.requests for s in under) and not outer:
            pairs = sorted({pair for s in under for pair in s.inner_macs})
            lines.append("no encapsulation: the echo crosses the underlay as the containers sent it, with their own "
                         "MAC addresses (" + ", ".join(f"{a} > {b}" for a, b in pairs) + ")")
    elif path.kind == "bridge":
        bridged = [s for s in seen if s.point.pid == 0 and s.requests]
        if bridged:
            lines.append(f"switched on {bridged[0].point.iface} in {bridged[0].point.host}: no encapsulation, the "
                         "echo never left the host")
    elif path.kind == "nat":
        nat_sources = sorted({src for s in seen if s.point.pid == 0 for src in s.sources} - {path.src_ip})
        if nat_sources:
            lines.append(f"NAT: on the underlay the echo request leaves from {', '.join(nat_sources)}, not "
                         f"{path.src_ip}")
    for s in seen:
        for address, times in sorted(s.arp_unanswered.items()):
            lines.append(f"ARP at {s.point.name}: {path.src_ip} asked {times} time(s) who has {address}, and no one "
                         "answered: that next hop does not exist (or cannot hear it), so no echo could be sent")
    silent = [s.point.name for s in seen if s.requests == 0]
    if silent:
        lines.append(f"no echo request seen at: {', '.join(silent)}")
    return lines
