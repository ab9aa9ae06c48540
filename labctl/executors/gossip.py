"""After the networks and containers: docker_gwbridge, every container attached, and the overlay's gossip
(every host knows every remote container, warmed and repaired within bounds)."""

from __future__ import annotations

import ipaddress
import shlex
import time

from fabric import Connection

from labctl.errors import LabctlError
from labctl.executors.labobjects import lab_addresses
from labctl.executors.remote import Hosts
from labctl.executors.steps import Report, run_steps
from labctl.model.playbook import Playbook
from labctl.plan.lab import (
    Step,
    container_order,
    container_run,
    stale_endpoints,
)
from labctl.plan.overlay import (
    GATEWAY_BRIDGE,
    GossipGap,
    expected_peers,
    gateway_bridge_command,
    gateway_bridge_subnet,
    gossip_gaps,
    known_ips_script,
    neighbour_script,
    parse_neighbours,
    unknown_containers,
    warm_command,
)
from labctl.plan.preflight import HostFacts
from labctl.ui import Progress

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


GOSSIP_TIMEOUT = 60
GOSSIP_FIRST_LOOK = 3
GOSSIP_REPAIR_AFTER = 15   # seconds of warming before the containers a host never learned are created again
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
    done = len(report.changes)
    run_steps(hosts, steps, progress, report, "repair")
    report.repairs += report.changes[done:]


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


def _neighbours(hosts: Hosts, expected: dict[str, dict[str, int]], timeout: float) -> dict[str, dict[str, int]]:
    def one(n: str, c: Connection) -> dict[str, int]:
        return parse_neighbours(str(c.run(neighbour_script(expected[n], timeout), hide=True).stdout))

    return hosts.each(one, list(expected), step="overlay gossip")
