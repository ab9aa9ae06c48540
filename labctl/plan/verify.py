"""`verify`: which container should reach which, derived from the playbook; verdicts and their likely causes.

Pure: the executor supplies what exists (container state, address per network, host underlay addresses) and the
probe results; this module decides what to probe, what it means and why a check failed.

Rules (from the tutorials this replaces):
- containers sharing a network reach each other by IP on it; local `bridge` networks (default or user-defined)
  are shared only on the same host, macvlan and overlay across hosts;
- by name where Docker resolves names (user-defined and overlay networks); on the default bridge names do not
  resolve;
- containers with no shared network are isolated from each other's addresses;
- a container on macvlan (and on no bridge) cannot reach its own host's address;
- `none` reaches nothing; `host` answers on the host's address (probed from bridge containers of the same host) and
  reaches local bridge containers; `container:<x>` has x's addresses (probed as a source, never as a destination).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from labctl.model.playbook import Container, Expectation, Playbook
from labctl.planes import names as plane_names
from labctl.planes.base import PlanePlan
from labctl.planes.registry import plan_half

DEFAULT_BRIDGE = "bridge"


@dataclass(frozen=True, slots=True)   # slots: 204,160 of them at 16 x 20
class Check:
    src: str
    src_host: str
    dst: str              # container name, "host:NAME", or the address / name itself
    dst_host: str | None
    network: str          # the network the expectation is about ("host" for host targets without one)
    address: str          # what is pinged: an IP or a name
    expect: str           # "reach" | "isolated"
    via: str              # "ip" | "name" | "host" | "address"
    reason: str           # why this is expected
    size: int | None = None   # via "size": the echo's payload, the biggest that fits the network's MTU

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.src, self.dst, self.network, self.via)


@dataclass(frozen=True)
class Facts:
    """What exists, as the executor found it."""

    state: dict[str, str]                      # container -> "running", "exited", ... (absent: not there)
    addresses: dict[str, dict[str, str]]       # container -> network -> IPv4 address
    host_addresses: dict[str, str]             # docker host -> underlay address
    drivers: dict[str, str] = field(default_factory=dict)  # network -> driver (playbook's, plus "bridge")


@dataclass(slots=True)
class Result:
    check: Check
    observed: str                 # "reach" | "isolated"
    rtt_ms: float | None = None
    cause: str = ""

    @property
    def ok(self) -> bool:
        return self.observed == self.check.expect


def networks_of(pb: Playbook, c: Container) -> list[str]:
    """The networks whose addresses the container has (container:<x> shares x's)."""
    mode = c.network_mode or ""
    if mode.startswith("container:"):
        return networks_of(pb, pb.container(mode.split(":", 1)[1]))
    if c.networks:
        return [a.network for a in c.networks]
    return [DEFAULT_BRIDGE] if mode in ("", "bridge") else []


def drivers_of(pb: Playbook) -> dict[str, str]:
    return {DEFAULT_BRIDGE: "bridge", **{n.name: n.driver for n in pb.networks}}


def shares_stack(a: Container, b: Container) -> bool:
    ma, mb = a.network_mode or "", b.network_mode or ""
    return ma == f"container:{b.name}" or mb == f"container:{a.name}" or (
        ma.startswith("container:") and ma == mb)


def shared(pb: Playbook, a: Container, b: Container, drivers: dict[str, str]) -> list[str]:
    nets_b = set(networks_of(pb, b))
    return [n for n in networks_of(pb, a) if n in nets_b and (drivers[n] != "bridge" or a.host == b.host)]


def has_bridge(pb: Playbook, c: Container, drivers: dict[str, str]) -> bool:
    return any(drivers[n] == "bridge" for n in networks_of(pb, c))


def derive(pb: Playbook, facts: Facts) -> list[Check]:
    """Every expectation of the playbook, with the addresses found; then the playbook's `expect:` entries."""
    drivers = drivers_of(pb)
    checks: list[Check] = []
    for a in pb.containers:
        checks += _from_container(pb, a, facts, drivers)
    checks += full_size_checks(pb, facts)
    return apply_overrides(checks, pb.expect, pb, facts, drivers)


OVERLAY_MTU = 1450        # Docker's overlay (and labctl's VXLAN devices): 1500 of the underlay less VXLAN's 50
ICMP_OVERHEAD = 28        # IPv4 and ICMP headers: an echo of MTU - 28 bytes of payload fills a whole packet


def overlay_mtu(pb: Playbook, network: str) -> int:
    net = pb.network(network)
    option = dict(net.options).get("com.docker.network.driver.mtu")
    return net.mtu or (int(option) if option and option.isdigit() else OVERLAY_MTU)


def full_size_checks(pb: Playbook, facts: Facts) -> list[Check]:
    """Per overlay, per ordered pair of hosts: one echo as big as the overlay's MTU allows. Small echoes pass
    an underlay whose MTU is too small for VXLAN (or differs between hosts); whole packets do not, and that is
    what breaks real traffic (TLS handshakes, file transfers) while ping looks fine."""
    checks = []
    for net in pb.networks:
        if net.driver != "overlay" and net.vni is None:   # vni: the vxlan plane's overlays, macvlan to Docker
            continue
        first: dict[str, Container] = {}
        for c in pb.containers:
            if not c.network_mode and any(a.network == net.name for a in c.networks):
                first.setdefault(c.host, c)
        size = overlay_mtu(pb, net.name) - ICMP_OVERHEAD
        for a in first.values():
            for b in first.values():
                if a.host != b.host:
                    checks.append(Check(a.name, a.host, b.name, b.host, net.name,
                                        facts.addresses.get(b.name, {}).get(net.name, ""), "reach", "size",
                                        f"a whole {size + ICMP_OVERHEAD}-byte packet crosses {net.name} between "
                                        "the hosts", size))
    return checks


def _from_container(pb: Playbook, a: Container, facts: Facts, drivers: dict[str, str]) -> list[Check]:
    checks = []
    mode = a.network_mode or ""
    for b in pb.containers:
        if b.name == a.name or shares_stack(a, b) or (b.network_mode or "").startswith("container:"):
            continue
        b_mode = b.network_mode or ""
        if b_mode == "host":
            if a.host == b.host and has_bridge(pb, a, drivers):
                checks.append(_host_check(a, b.host, facts, "reach", "host", f"{b.name} uses the host's stack",
                                          dst=b.name))
            continue
        if b_mode == "none":
            continue
        b_addrs = facts.addresses.get(b.name, {})
        if mode == "none":
            checks += [_ip(a, b, net, addr, "isolated", f"{a.name} has network_mode none") for net, addr in
                       sorted(b_addrs.items()) if net in networks_of(pb, b)]
            continue
        if mode == "host":
            checks += [_ip(a, b, net, b_addrs.get(net, ""), "reach", f"the host reaches its bridge {net}")
                       for net in networks_of(pb, b) if drivers[net] == "bridge" and a.host == b.host]
            continue
        common = shared(pb, a, b, drivers)
        for net in common:
            checks.append(_ip(a, b, net, b_addrs.get(net, ""), "reach", f"both on {net}"))
        if common:
            named = [n for n in common if n != DEFAULT_BRIDGE]
            # Across hosts only an overlay carries names: on a local-scope network (macvlan, and the vxlan
            # control plane's overlays, which Docker sees as macvlan) each daemon knows its own containers only.
            across = [n for n in named if drivers[n] == "overlay"] if a.host != b.host else named
            if across:
                checks.append(_name(a, b, across[0], "reach", f"Docker resolves names on {across[0]}"))
            elif named:
                checks.append(_name(a, b, named[0], "isolated", f"{b.name} is on another host and {named[0]} is "
                                    "local to each host for Docker's DNS: the name does not resolve there"))
            else:
                checks.append(_name(a, b, DEFAULT_BRIDGE, "isolated", "no name resolution on the default bridge"))
        else:
            checks += [_ip(a, b, net, addr, "isolated", "no shared network") for net, addr in
                       sorted(b_addrs.items()) if net in networks_of(pb, b)]
            if a.host == b.host and networks_of(pb, b):
                # Docker's tutorial: `ping alpine3` from a user network gives `bad address`, although one daemon
                # runs both; its DNS answers only for containers on a user-defined network the asker is on.
                checks.append(_name(a, b, networks_of(pb, b)[0], "isolated", f"{b.name} shares no user-defined "
                                    f"network with {a.name}: Docker's DNS does not answer for it"))
    nets = networks_of(pb, a)
    macvlans = [n for n in nets if drivers[n] == "macvlan"]
    if macvlans and not has_bridge(pb, a, drivers) and mode not in ("host", "none"):
        checks.append(_host_check(a, a.host, facts, "isolated", macvlans[0],
                                  "a macvlan container cannot reach its own host"))
    return checks


def _ip(a: Container, b: Container, net: str, addr: str, expect: str, reason: str) -> Check:
    return Check(a.name, a.host, b.name, b.host, net, addr, expect, "ip", reason)


def _name(a: Container, b: Container, net: str, expect: str, reason: str) -> Check:
    return Check(a.name, a.host, b.name, b.host, net, b.name, expect, "name", reason)


def _host_check(a: Container, host: str, facts: Facts, expect: str, network: str, reason: str,
                dst: str | None = None) -> Check:
    return Check(a.name, a.host, dst or f"host:{host}", host, network, facts.host_addresses.get(host, ""), expect,
                 "host", reason)


def apply_overrides(checks: list[Check], entries: Iterable[Expectation], pb: Playbook, facts: Facts,
                    drivers: dict[str, str]) -> list[Check]:
    by_key = {c.key: c for c in checks}
    for e in entries:
        for check in _expectation_checks(e, pb, facts, drivers):
            by_key[check.key] = check  # overrides a derived one with the same source, target, network and kind
    return list(by_key.values())


def _expectation_checks(e: Expectation, pb: Playbook, facts: Facts, drivers: dict[str, str]) -> list[Check]:
    a = pb.container(e.src)
    reason = f"playbook expect[{e.index}]"
    if e.kind == "host":
        return [Check(a.name, a.host, f"host:{e.target}", e.target, e.network or "host",
                      facts.host_addresses.get(e.target, ""), e.expect, "host", reason)]
    if e.kind == "address":
        return [Check(a.name, a.host, e.target, None, e.network or "-", e.target, e.expect, "address", reason)]
    if e.kind == "name":
        return [Check(a.name, a.host, e.target, None, e.network or "-", e.target, e.expect, "name", reason)]
    b = pb.container(e.target)
    nets = [e.network] if e.network is not None else shared(pb, a, b, drivers) or networks_of(pb, b)
    addrs = facts.addresses.get(b.name, {})
    return [_ip(a, b, net, addrs.get(net, ""), e.expect, reason) for net in nets]


def sample(checks: list[Check]) -> list[Check]:
    """One check per (source host, destination host, network, kind of target, expectation): for big labs."""
    seen: set[tuple] = set()
    result = []
    for c in checks:
        key = (c.src_host, c.dst_host, c.network, c.via, c.expect)
        if key not in seen:
            seen.add(key)
            result.append(c)
    return result


# ---------------------------------------------------------------- causes


@dataclass(frozen=True)
class Diagnosis:
    """Facts gathered on the spot when some checks failed."""

    store_ok: bool | None = None                      # None: no store in the playbook
    store_detail: str = ""
    overlay_missing: dict[str, list[str]] = field(default_factory=dict)   # host -> overlays it does not see
    vxlan_drops: dict[str, list[str]] = field(default_factory=dict)       # host -> firewall rules dropping 4789
    underlay_mtu: dict[str, int] = field(default_factory=dict)
    actual_networks: dict[str, list[str]] = field(default_factory=dict)   # container -> networks it is on now
    macvlan_hint: str = ""       # the provider's word on macvlan frames lost between hosts (VirtualBox's NICs)
    unreachable_hosts: dict[str, str] = field(default_factory=dict)       # host -> why SSH failed
    store_unreachable_from: list[str] = field(default_factory=list)       # docker hosts that cannot open the store
    # Consul labs: docker host -> its underlay address, for hosts whose engine is not under docker/nodes/ in the store
    store_unregistered: dict[str, str] = field(default_factory=dict)
    control: str = "auto"                                      # the overlay's control plane (labctl.planes)
    plane: Any = None          # what that plane's executor half found (ControlPlane.diagnose), for its own causes
    misroutes: dict[str, dict[str, str]] = field(default_factory=dict)  # host -> peer host -> device that takes
    #                                                                      the peer's address instead of the underlay


def explain(results: list[Result], pb: Playbook, facts: Facts, diag: Diagnosis) -> None:
    """Fill in `cause` for every failed check: the most specific fact that accounts for it."""
    drivers = drivers_of(pb)
    passed = [r for r in results if r.ok]
    # pairs that reach by address: a failed by-name check between them is the names' fault (built once: at 16 x 20
    # there are 200,000 passed checks)
    by_ip = {(p.check.src, p.check.dst, p.check.network) for p in passed
             if p.check.via == "ip" and p.check.expect == "reach"}
    for r in results:
        if not r.ok and not r.cause.startswith("no probe result"):  # the prober's own failure stays the cause
            r.cause = _cause(r, pb, facts, diag, drivers, passed, by_ip)


def _cause(r: Result, pb: Playbook, facts: Facts, diag: Diagnosis, drivers: dict[str, str],
           passed: list[Result], by_ip: set[tuple[str, str, str]]) -> str:
    c = r.check
    lab_names = {x.name for x in pb.containers}
    for host in (c.src_host, c.dst_host):
        if host in diag.unreachable_hosts:
            return f"{host} cannot be asked: {diag.unreachable_hosts[host]}"
    for name in (c.src, c.dst):
        if name not in lab_names or facts.state.get(name) == "running":
            continue
        state = facts.state.get(name)
        text = (f"{name} is not running (state: {state})" if state else
                f"{name} does not exist on {pb.container(name).host}")
        overlays = [n for n in networks_of(pb, pb.container(name)) if drivers.get(n) == "overlay"]
        if overlays and diag.store_ok is False:
            return (f"{text}: the cluster store does not answer ({diag.store_detail}), and a container cannot join "
                    f"overlay {overlays[0]} without it; start the store (`labctl up`)")
        return f"{text}: run `labctl up` (or `docker start {name}` on its host)"
    if c.expect == "isolated":
        return _isolation_cause(c, pb, diag, lab_names)
    tunnelled = drivers.get(c.network) == "overlay" or _vni(pb, c.network) is not None
    misroute = _misroute(c, diag) if tunnelled or c.via == "host" else ""   # macvlan frames are not routed
    if misroute:
        return misroute
    detached = _detached(c, pb, diag, lab_names)
    if detached:
        return (f"{detached} is not attached to {c.network} (disconnected by hand?): `docker network connect "
                f"{c.network} {detached}` on {pb.container(detached).host}, or `labctl up`")
    if not c.address:
        return f"{c.dst} has no address on {c.network} (not attached: started while the store was unreachable?)"
    driver = drivers.get(c.network, "")
    if c.via == "size" and any(p.check.network == c.network and p.check.via == "ip" and p.check.expect == "reach"
                               and {p.check.src_host, p.check.dst_host} == {c.src_host, c.dst_host} for p in passed):
        return _size_cause(c, pb, diag)   # small packets pass the same way: it is the size
    if c.via == "name" and c.src_host != c.dst_host and (c.src, c.dst, c.network) in by_ip:
        return (f"{c.src} reaches {c.dst} by address on {c.network}, but Docker's DNS on {c.src_host} does not "
                f"answer the name {c.address}: {c.src_host}'s dockerd has not learned {c.dst}'s name (the data path "
                "works; names travel apart from it: the cluster store's updates or swarm's gossip)")
    plane = _plane(diag)
    said = plane.cause(c, pb, diag) if plane else None
    if said:
        return said
    if c.via == "host" and driver == "macvlan" and c.src_host == c.dst_host:
        return "a macvlan container cannot reach its own host through the parent interface (Linux macvlan rule)"
    if driver == "overlay" and c.src_host != c.dst_host:
        return _overlay_cause(c, diag, passed)
    if driver == "macvlan" and c.src_host != c.dst_host:
        if diag.macvlan_hint:
            return diag.macvlan_hint
        return (f"macvlan frames between {c.src_host} and {c.dst_host} are not delivered: the underlay must accept "
                "several MAC addresses per port (promiscuous mode on virtual NICs)")
    if c.via == "name":
        return f"the name {c.address} did not resolve or did not answer on {c.network}"
    return f"no answer from {c.address} ({c.reason})"


def _size_cause(c: Check, pb: Playbook, diag: Diagnosis) -> str:
    need = overlay_mtu(pb, c.network) + 50
    low = [h for h in (c.src_host, c.dst_host) if h and diag.underlay_mtu.get(h, 1500) < need]
    if low:
        return (f"underlay MTU {diag.underlay_mtu[low[0]]} on {low[0]} is below the {need} bytes that {c.network}'s "
                f"{need - 50}-byte packets need with VXLAN's 50: whole packets are lost while small ones pass; "
                f"raise the underlay's MTU to {need} or give {c.network} `mtu: {diag.underlay_mtu[low[0]] - 50}`")
    return (f"whole {need - 50}-byte packets on {c.network} got no answer between {c.src_host} and {c.dst_host}: "
            "an MTU smaller than the overlay's somewhere on the path (underlay, switch)")


def _misroute(c: Check, diag: Diagnosis) -> str:
    """A host whose route to the other host's underlay address leads into one of its own bridges: a network whose
    subnet overlaps the underlay. Every tunnelled packet (and every reply) between the two is lost."""
    if not c.dst_host or c.src_host == c.dst_host:
        return ""
    for host, peer in ((c.src_host, c.dst_host), (c.dst_host, c.src_host)):
        device = diag.misroutes.get(host, {}).get(peer)
        if device:
            return (f"{host} routes {peer}'s underlay address through {device} instead of the underlay: that "
                    "network's subnet overlaps the underlay; remove it (or give it a subnet of its own)")
    return ""


def _detached(c: Check, pb: Playbook, diag: Diagnosis, lab_names: set[str]) -> str | None:
    """The source or destination that the playbook puts on the check's network but that is not on it now."""
    for name in (c.src, c.dst):
        if name not in lab_names or name not in diag.actual_networks:
            continue
        x = pb.container(name)
        if x.network_mode or c.network not in networks_of(pb, x):
            continue
        if c.network not in diag.actual_networks[name]:
            return name
    return None


def _isolation_cause(c: Check, pb: Playbook, diag: Diagnosis, lab_names: set[str]) -> str:
    def extra(name: str) -> set[str]:
        if name not in lab_names:
            return set()
        return set(diag.actual_networks.get(name, [])) - set(networks_of(pb, pb.container(name)))

    both = sorted(extra(c.src) & set(diag.actual_networks.get(c.dst, [])))
    if both:
        return (f"{c.src} and {c.dst} share network {', '.join(both)} that the playbook does not give them "
                "(connected by hand?): `docker network disconnect` it or add it to the playbook")
    if extra(c.src):
        return (f"{c.src} is attached to {', '.join(sorted(extra(c.src)))}, which the playbook does not give it "
                f"(connected by hand?), and that network gives it a route to {c.address}")
    return f"{c.address} answered although the playbook isolates it ({c.reason})"


def _vni(pb: Playbook, network: str) -> int | None:
    return next((n.vni for n in pb.networks if n.name == network), None)


def _plane(diag: Diagnosis) -> PlanePlan | None:
    return plan_half(diag.control) if diag.control in plane_names() else None


def _overlay_cause(c: Check, diag: Diagnosis, passed: list[Result]) -> str:
    blind = [h for h in (c.src_host, c.dst_host) if h in diag.store_unreachable_from]
    if blind:
        return (f"{blind[0]} cannot open a connection to the cluster store ({diag.store_detail}): it cannot learn "
                "the overlay's endpoints; check the underlay and firewall between it and the store host")
    if diag.store_ok is False:
        return (f"the cluster store does not answer ({diag.store_detail}): hosts cannot learn the overlay's "
                "endpoints; start it with `labctl up`")
    for host in (c.src_host, c.dst_host):
        if host and host in diag.store_unregistered:
            return (f"{host} is not registered in the cluster store (no docker/nodes/{diag.store_unregistered[host]}"
                    ":... key): its dockerd does not use the store; check cluster-store and cluster-advertise in its "
                    "daemon.json, then `labctl up`")
    plane = _plane(diag)
    said = plane.overlay_cause(c, diag) if plane else None
    if said:
        return said
    for host in (c.src_host, c.dst_host):
        if host and c.network in diag.overlay_missing.get(host, []):
            why = plane.overlay_missing if plane else "it has not joined the overlay; run `labctl up`"
            return f"{host} does not see overlay {c.network}: {why}"
    for host in (c.src_host, c.dst_host):
        if host and diag.vxlan_drops.get(host):
            return f"VXLAN (UDP 4789) is dropped on {host} by its firewall: {diag.vxlan_drops[host][0]}"
    same_host_ok = any(p.check.network == c.network and p.check.src_host == p.check.dst_host for p in passed)
    underlay_ok = any(p.check.network != c.network and {p.check.src_host, p.check.dst_host} ==
                      {c.src_host, c.dst_host} and p.check.expect == "reach" for p in passed)
    low_mtu = [h for h in (c.src_host, c.dst_host) if h and diag.underlay_mtu.get(h, 1500) < 1500]
    if low_mtu:
        return (f"underlay MTU {diag.underlay_mtu[low_mtu[0]]} on {low_mtu[0]} leaves less than the 50 bytes VXLAN "
                "needs: set the overlay's mtu lower")
    if same_host_ok and underlay_ok:
        return (f"VXLAN (UDP 4789) between {c.src_host} and {c.dst_host} is blocked or lost: the overlay works on "
                "one host and the underlay carries other traffic between them")
    return f"overlay traffic from {c.src_host} to {c.dst_host} got no answer"


def verdict(results: list[Result]) -> dict[str, int]:
    failed = sum(1 for r in results if not r.ok)
    return {"total": len(results), "passed": len(results) - failed, "failed": failed}

