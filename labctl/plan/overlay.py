"""Has every host heard of every remote container on each overlay network? (classic overlay gossip)

With a cluster store (Engine 20.10 "classic" overlay), each dockerd learns the other hosts' containers from serf
events and writes each one as a PERMANENT neighbour entry (container IP -> MAC) on the vxlan device inside the
network's namespace, /run/docker/netns/<epoch>-<first 10 characters of the network ID>. A host whose entries stay
short of the number of lab containers on the other hosts is cut off from part of the gossip. Seen here: restarted
in parallel, 8 dockerds split into two serf clusters ({node1, node5, node8} and the rest) for good; each side's
containers then failed to reach the other's with "could not resolve peer ... timed out resolving peer by
querying the cluster". This module says what to expect and reads what the hosts report; no I/O.
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass

from labctl.model.playbook import Playbook


def overlay_ns(network: str) -> str:
    """Shell that sets $ns to Docker's namespace of an overlay network on this host ("" when there is none yet:
    it exists once a local container joins). Epochs other than 1 appear after dockerd re-creates it."""
    return (f"id=$(docker network inspect -f '{{{{.Id}}}}' {shlex.quote(network)} 2>/dev/null | cut -c1-10); "
            'ns=""; [ -n "$id" ] && ns=$(ls -d /run/docker/netns/*-"$id" 2>/dev/null | tail -n 1)')


def expected_peers(pb: Playbook) -> dict[str, dict[str, int]]:
    """host -> overlay network -> lab containers on that network on other hosts.

    Only hosts with a container of their own on the network: the network's namespace exists only then."""
    result: dict[str, dict[str, int]] = {}
    for net in pb.networks:
        if net.driver != "overlay":
            continue
        per_host: dict[str, int] = {}
        for c in pb.containers:
            if c.network_mode is None and any(a.network == net.name for a in c.networks):
                per_host[c.host] = per_host.get(c.host, 0) + 1
        total = sum(per_host.values())
        for host, local in per_host.items():
            result.setdefault(host, {})[net.name] = total - local
    return result


def neighbour_script(expected: dict[str, int], timeout: float, interval: float = 0.5) -> str:
    """Poll until each network's permanent neighbours reach the expected count, or `timeout` seconds pass; then
    print one `NETWORK COUNT` line per network. Bounded: it always stops by itself."""
    checks = []
    for name, want in sorted(expected.items()):
        checks.append(
            f'{overlay_ns(name)}; n=0; '
            f'[ -n "$ns" ] && n=$(nsenter --net="$ns" ip -4 neigh show nud permanent | grep -c lladdr); '
            f'out="${{out}}{name} $n\n"; [ "$n" -ge {int(want)} ] || ok=0')
    body = "; ".join(checks)
    return (f"end=$(( $(date +%s) + {int(timeout)} )); "
            f"while :; do ok=1; out=''; {body}; "
            f'[ $ok = 1 ] && break; [ "$(date +%s)" -ge "$end" ] && break; sleep {interval}; done; '
            'printf "$out"')


def parse_neighbours(out: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return counts


@dataclass(frozen=True)
class GossipGap:
    host: str
    network: str
    seen: int
    expected: int

    def __str__(self) -> str:
        return (f"{self.host}: overlay {self.network} knows {self.seen} of the {self.expected} containers on other "
                "hosts")


def gossip_gaps(expected: dict[str, dict[str, int]], seen: dict[str, dict[str, int]]) -> list[GossipGap]:
    gaps = []
    for host, nets in sorted(expected.items()):
        for net, want in sorted(nets.items()):
            got = seen.get(host, {}).get(net, 0)
            if got < want:
                gaps.append(GossipGap(host, net, got, want))
    return gaps


def warm_command(pb: Playbook, host: str, network: str, addresses: dict[str, dict[str, str]]) -> str | None:
    """One ping from a container of this host to each container of the network on other hosts, all at once.

    Serf events are lost now and then under load (a host then misses a container until serf's next full state
    exchange, up to 30 s later). A ping to a container the host does not know makes dockerd ask the cluster for
    it (an L3 miss, then a serf query), which writes the same neighbour entry at once. `addresses`: container ->
    network -> IP, as `docker inspect` reported them."""
    local = [c.name for c in pb.containers if c.host == host and c.network_mode is None
             and any(a.network == network for a in c.networks)]
    remote = sorted({addresses.get(c.name, {}).get(network, "") for c in pb.containers
                     if c.host != host and c.network_mode is None} - {""})
    if not local or not remote:
        return None
    pings = " ".join(f"ping -c1 -W1 {shlex.quote(ip)} >/dev/null 2>&1 &" for ip in remote)
    return f"timeout 10 docker exec {shlex.quote(local[0])} sh -c {shlex.quote(pings + ' wait')}"


def parse_addresses(out: str) -> dict[str, dict[str, str]]:
    """Lines `/NAME net=IP net=IP` (docker inspect, template in executors) -> container -> network -> IP."""
    result: dict[str, dict[str, str]] = {}
    for line in out.splitlines():
        name, *pairs = line.split()
        if not name.startswith("/"):
            continue
        result[name[1:]] = {k: v for k, _, v in (p.partition("=") for p in pairs) if v}
    return result


def known_ips_script(network: str) -> str:
    """The IPv4 addresses of the permanent neighbour entries dockerd wrote for an overlay network on this host."""
    return (f'{overlay_ns(network)}; [ -n "$ns" ] && nsenter --net="$ns" ip -4 neigh show nud permanent | '
            "grep lladdr | cut -d' ' -f1")


def unknown_containers(pb: Playbook, host: str, network: str, known_ips: set[str],
                       addresses: dict[str, dict[str, str]]) -> list[str]:
    """The lab's containers on other hosts whose address on `network` the host has no neighbour entry for.

    Seen here after a run was killed while `docker run` attached a container to the overlay: the next run's container
    of that name got its endpoint, and one host never learned it, for good (its dockerd had the stale endpoint's
    removal arrive after the new one's creation, which took the entry away again). Pings do not bring it back;
    creating that container once more does."""
    return sorted(c.name for c in pb.containers
                  if c.host != host and c.network_mode is None and any(a.network == network for a in c.networks)
                  and addresses.get(c.name, {}).get(network) not in known_ips | {None, ""})


GATEWAY_BRIDGE = "docker_gwbridge"
# The pools Docker itself would draw docker_gwbridge from (its default local address pools), in order.
GATEWAY_CANDIDATES = tuple(ipaddress.ip_network(f"172.{i}.0.0/16") for i in range(18, 32)) + tuple(
    ipaddress.ip_network(f"192.168.{i}.0/24") for i in range(0, 256, 16))


def gateway_bridge_subnet(pb: Playbook, host: str, in_use: list[str]) -> str | None:
    """A subnet for docker_gwbridge on this host that overlaps none of the playbook's networks, docker0 and what the
    host already has (in_use: subnets and addresses). Docker picks it from a rotating pool otherwise, and after
    enough networks came and went on one daemon it picked the playbook's macvlan subnet: the container's overlay
    side (eth1 on docker_gwbridge) then took 172.29.0.3/16 and its macvlan address 172.29.0.11/16 was refused
    ("conflicts with existing route"; seen in CI on Engine 26). None when every candidate is taken."""
    taken: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = [n.subnet for n in pb.networks]
    taken.append(ipaddress.ip_network(pb.bips.get(host, "172.17.0.1/16"), strict=False))
    for text in in_use:
        try:
            taken.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            continue
    for cand in GATEWAY_CANDIDATES:
        if not any(t.version == 4 and cand.overlaps(t) for t in taken):
            return str(cand)
    return None


def gateway_bridge_command(subnet: str) -> str:
    """docker_gwbridge as Docker makes it (no inter-container traffic, masqueraded), on a subnet labctl chose."""
    return shlex.join(["docker", "network", "create", "--subnet", subnet,
                       "--opt", f"com.docker.network.bridge.name={GATEWAY_BRIDGE}",
                       "--opt", "com.docker.network.bridge.enable_icc=false",
                       "--opt", "com.docker.network.bridge.enable_ip_masquerade=true", GATEWAY_BRIDGE])
