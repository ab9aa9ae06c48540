"""`labctl trace SRC DST`: find the path on the hosts, capture on it while SRC pings DST, and say what the captures
prove. Bounded: a few echoes; every tcpdump stops after CAPTURE_PACKETS packets or CAPTURE_SECONDS, whichever
comes first, and is stopped by its PID as soon as the ping is over. Captures go to a private directory under
/var/lib/labctl, which is removed at the end (and, for a run that died, by the next trace)."""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
from dataclasses import dataclass

from fabric import Connection

from labctl.errors import LabctlError, PrerequisiteError, UsageError
from labctl.executors.facts import ask
from labctl.executors.remote import Hosts
from labctl.executors.status import gather as gather_status
from labctl.executors.verify import underlay_facts
from labctl.model.inventory import Inventory
from labctl.model.playbook import Playbook
from labctl.plan.status import LabStatus, NetworkRow
from labctl.plan.trace import (
    CapturePoint,
    HostFacts,
    Path,
    Seen,
    build_path,
    host_facts,
    parse_arp,
    parse_tcpdump,
    proof,
    seen_at,
    trace_facts,
)
from labctl.ui import Progress

CAPTURE_SECONDS = 20
CAPTURE_PACKETS = 100
TRACE_DIR = "/var/lib/labctl"
MARK = "--labctl-capture--"
# A run that died leaves its directory (its tcpdumps stop by themselves within CAPTURE_SECONDS): removed first.
CLEAN_OLD = (f"for d in {TRACE_DIR}/trace.*; do [ -d \"$d\" ] || continue; for f in \"$d\"/*.pid; do "
             "[ -f \"$f\" ] || continue; p=$(cat \"$f\"); grep -q tcpdump /proc/$p/cmdline 2>/dev/null && "
             "kill -INT \"$p\" 2>/dev/null; done; rm -rf \"$d\"; done")


@dataclass
class TraceResult:
    path: Path
    sent: int
    received: int
    ping_output: str
    seen: list[Seen]
    proof: list[str]
    pcaps: list[str]
    plane: str | None

    @property
    def ok(self) -> bool:
        return self.received > 0


def choose(status: LabStatus, pb: Playbook | None, src: str, dst: str,
           network: str | None) -> tuple[str, str, str | None, str, str, int | None]:
    """(kind, network, destination container or None, source address, destination address, VNI) from status."""
    ctrs = {c.name: c for c in status.containers}
    nets = {n.name: n for n in status.networks}
    if src not in ctrs:
        raise UsageError(f"trace: no container {src} of the lab on the hosts",
                              hint="`labctl status` lists them; start the lab with `labctl up`")
    if ctrs[src].state != "running":
        raise LabctlError(f"trace: {src} is {ctrs[src].state}, it cannot ping", hint="`labctl up` starts it")
    src_addrs = {k: v for k, v in ctrs[src].addresses.items() if v}
    if dst in ctrs:
        dst_addrs = {k: v for k, v in ctrs[dst].addresses.items() if v}
        shared = [n for n in src_addrs if n in dst_addrs]
        if network is not None:
            if network not in shared:
                raise UsageError(f"trace: {src} and {dst} do not share network {network} (shared: "
                                      f"{', '.join(shared) or 'none'})", hint="pick one of the shared networks")
            shared = [network]
        if not shared:
            raise UsageError(f"trace: {src} and {dst} share no network", hint="trace to an address instead, "
                                  "or give them a common network")
        net = sorted(shared, key=lambda n: _preference(nets.get(n)))[0]
        return _kind(nets.get(net), ctrs[src].host == ctrs[dst].host), net, dst, src_addrs[net], \
            dst_addrs[net], _vni(nets.get(net))
    try:
        address = ipaddress.ip_address(dst)
    except ValueError:
        raise UsageError(f"trace: {dst} is neither a container of the lab nor an IPv4 address",
                              hint="`labctl status` lists the containers") from None
    owner = next((c.name for c in status.containers if dst in c.addresses.values()), None)
    if owner is not None:   # an address of a container on one of the source's networks: that network's path
        same = [n for n, a in ctrs[owner].addresses.items() if a == dst and n in src_addrs and
                (network in (None, n))]
        if same:
            return _kind(nets.get(same[0]), ctrs[owner].host == ctrs[src].host), same[0], owner, \
                src_addrs[same[0]], dst, _vni(nets.get(same[0]))
    for name, addr in src_addrs.items():
        subnet = _net(nets.get(name)).subnet
        if subnet and address in ipaddress.ip_network(subnet) and (network in (None, name)):
            same_host = owner is not None and ctrs[owner].host == ctrs[src].host
            return _kind(nets.get(name), same_host), name, owner, addr, dst, _vni(nets.get(name))
    net = network or next((n for n in src_addrs if _net(nets.get(n)).driver in ("bridge", None)),
                          next(iter(src_addrs), ""))
    if not net:
        raise UsageError(f"trace: {src} has no network address", hint="is it on network none?")
    return "nat", net, owner, src_addrs.get(net, ""), dst, None


def _net(net: NetworkRow | None) -> NetworkRow:
    return net or NetworkRow(name="", lab=None, driver=None, scope=None, subnet=None, gateway=None)


def _vni(net: NetworkRow | None) -> int | None:
    return net.vni if net is not None else None


def _preference(net: NetworkRow | None) -> int:
    """Which shared network to trace on by default: an overlay (Docker's, or labctl's VXLAN under macvlan) first."""
    driver = _net(net).driver or "bridge"
    if driver == "overlay" or (driver == "macvlan" and _vni(net)):
        return 0
    return {"macvlan": 1, "bridge": 2}.get(driver, 3)


def _kind(net: NetworkRow | None, same_host: bool) -> str:
    driver = _net(net).driver or "bridge"
    if driver == "overlay":
        return "overlay"
    if driver == "macvlan":
        return "vxlan" if _vni(net) else "macvlan"
    return "bridge" if same_host else "nat"


def capture_script(points: list[CapturePoint]) -> str:
    """Start every capture of one host in the background and wait (at most 5 s) until each is listening; prints
    the private directory they write to."""
    lines = [CLEAN_OLD, f"mkdir -p {TRACE_DIR} && chmod 700 {TRACE_DIR}",
             f"d=$(mktemp -d {TRACE_DIR}/trace.XXXXXXXX) || exit 1"]
    for p in points:
        ns = f"nsenter -t {int(p.pid)} -n " if p.pid else ""
        lines.append(f"setsid {ns}timeout {CAPTURE_SECONDS} tcpdump -i {shlex.quote(p.iface)} -nn -U "
                     f"--immediate-mode -c {CAPTURE_PACKETS} -w \"$d/{p.name}.pcap\" {shlex.quote(p.bpf)} >/dev/null "
                     f"2>\"$d/{p.name}.err\" </dev/null & echo $! > \"$d/{p.name}.pid\"")
    lines.append("i=0; while [ $i -lt 50 ]; do n=0; for e in \"$d\"/*.err; do grep -q 'listening on' \"$e\" || "
                 "n=$((n+1)); done; [ $n -eq 0 ] && break; sleep 0.1; i=$((i+1)); done")
    lines.append("echo \"$d\"; for e in \"$d\"/*.err; do grep -q 'listening on' \"$e\" || "
                 "{ echo \"not listening: $(basename \"$e\" .err): $(tail -n 2 \"$e\")\"; }; done")
    return "\n".join(lines) + "\n"


def stop_script(directory: str, points: list[CapturePoint]) -> str:
    """Stop this run's captures by their PIDs (SIGINT: tcpdump writes what it has), then decode each file."""
    d = shlex.quote(directory)
    lines = ["sleep 0.3", f"for f in {d}/*.pid; do p=$(cat \"$f\"); kill -INT \"$p\" 2>/dev/null; done",
             f"i=0; while [ $i -lt 30 ]; do n=0; for f in {d}/*.pid; do kill -0 $(cat \"$f\") 2>/dev/null && "
             "n=$((n+1)); done; [ $n -eq 0 ] && break; sleep 0.1; i=$((i+1)); done"]
    for p in points:
        lines.append(f"echo {MARK} {p.name}; tcpdump -r {d}/{p.name}.pcap -nn -e -v 2>/dev/null")
    return "\n".join(lines) + "\n"


def split_decoded(out: str) -> dict[str, str]:
    found: dict[str, str] = {}
    current = ""
    for line in out.splitlines():
        if line.startswith(MARK + " "):
            current = line.split(" ", 1)[1].strip()
            found[current] = ""
        elif current:
            found[current] += line + "\n"
    return found


def ping_counts(out: str) -> tuple[int, int]:
    m = re.search(r"(\d+) packets transmitted, (\d+) (?:packets )?received", out)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def trace(inv: Inventory, pb: Playbook | None, hosts: Hosts, progress: Progress, src: str, dst: str,
          network: str | None = None, pcap_dir: str | None = None, count: int = 3) -> TraceResult:
    progress.step("all", "finding the containers, networks and underlay addresses")
    address = underlay_facts(inv)[0]
    status = gather_status(inv, pb, hosts, also=(address,))
    kind, net, dst_ctr, src_ip, dst_ip, vni = choose(status, pb, src, dst, network)
    ctrs = {c.name: c for c in status.containers}
    src_host = ctrs[src].host
    underlay = {n: s[address].address for n, s in status.answered().items()}
    dst_host = ctrs[dst_ctr].host if dst_ctr else next((h for h, a in underlay.items() if a == dst_ip), None)
    involved = [src_host] + ([dst_host] if dst_host and dst_host != src_host else [])

    def facts_of(name: str, conn: Connection) -> HostFacts:
        mine = [c for c in (src, dst_ctr) if c and ctrs[c].host == name]
        return host_facts(ask(conn, name, trace_facts(mine, net, dst_ip)), mine, inv.underlay_interface)

    progress.step("all", f"{src} -> {dst} on {net} ({kind}): reading interfaces on {', '.join(involved)}")
    facts = hosts.each(facts_of, involved, step="trace facts")
    lacking = [h for h, f in facts.items() if f.tools]
    if lacking:
        raise PrerequisiteError(f"trace needs tcpdump on {', '.join(lacking)}",
                                hint="apt-get install tcpdump (labctl provision installs it)")
    path = build_path(kind, net, vni, src, facts[src_host], src_ip, dst_ctr or dst, facts.get(dst_host or ""),
                      dst_ip)
    by_host: dict[str, list[CapturePoint]] = {}
    for p in path.captures:
        by_host.setdefault(p.host, []).append(p)
    progress.step("all", f"capturing at {len(path.captures)} point(s): {', '.join(p.name for p in path.captures)}")
    dirs = hosts.each(lambda n, c: str(c.run(capture_script(by_host[n]), hide=True).stdout), list(by_host),
                      step="start captures")
    directory = {h: out.splitlines()[0].strip() for h, out in dirs.items()}
    warnings = [line for out in dirs.values() for line in out.splitlines()[1:] if line.strip()]
    try:
        progress.step(src_host, f"{src}: ping -c {count} {dst_ip}")
        ping = hosts.conn(src_host).run(f"docker exec {shlex.quote(src)} ping -c {int(count)} -W 1 "
                                        f"{shlex.quote(dst_ip)}", hide=True, warn=True, timeout=count * 3 + 10)
        ping_out = str(ping.stdout) + str(ping.stderr)
    finally:
        decoded = hosts.each(lambda n, c: _finish(c, directory[n], by_host[n], pcap_dir), list(directory),
                             step="stop captures")
    sent, received = ping_counts(ping_out)
    texts: dict[str, str] = {}
    pcaps: list[str] = []
    for out, files in decoded.values():
        texts.update(out)
        pcaps += files
    seen = [seen_at(p, parse_tcpdump(texts.get(p.name, "")), path, parse_arp(texts.get(p.name, "")))
            for p in path.captures]
    plane = status.control.plane if status.control else None
    return TraceResult(path, sent, received, ping_out, seen, proof(path, seen) + warnings, pcaps, plane)


def _finish(conn: Connection, directory: str, points: list[CapturePoint],
            pcap_dir: str | None) -> tuple[dict[str, str], list[str]]:
    """Stop the captures, decode them, fetch the files when asked, remove the directory: whatever fails."""
    try:
        out = str(conn.run(stop_script(directory, points), hide=True, warn=True).stdout)
        files = []
        if pcap_dir:
            os.makedirs(pcap_dir, exist_ok=True)
            for p in points:
                local = os.path.join(pcap_dir, f"{p.name}.pcap")
                conn.get(f"{directory}/{p.name}.pcap", local)
                files.append(local)
        return split_decoded(out), files
    finally:
        conn.run(f"rm -rf {shlex.quote(directory)}", hide=True, warn=True)
