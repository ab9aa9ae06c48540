"""What `up` waits for before it calls an overlay lab done: every host knows every remote container (plan.overlay).

The waiting itself runs for real in tests/integration/test_lab.py (a host made to forget containers is repaired)."""

from __future__ import annotations

import os
import shlex
import textwrap

from labctl.model.inventory import parse_inventory
from labctl.model.playbook import parse_playbook
from labctl.plan.overlay import (
    GossipGap,
    expected_peers,
    gossip_gaps,
    neighbour_script,
    parse_addresses,
    parse_neighbours,
    warm_command,
)

DATA = os.path.join(os.path.dirname(__file__), "data")
INV = parse_inventory(textwrap.dedent("""
    name: t
    provider: sandbox
    underlay: {subnet: 198.18.40.0/24}
    hosts:
      store: {roles: [store]}
      node1: {roles: [docker]}
      node2: {roles: [docker]}
      node3: {roles: [docker]}
    """), "t.yaml")
PB = parse_playbook(textwrap.dedent("""
    name: t
    store: {backend: etcd}
    networks:
      ov: {driver: overlay, subnet: 172.30.0.0/16}
      ov2: {driver: overlay, subnet: 172.31.0.0/16}
      br: {driver: bridge, subnet: 10.90.0.0/24, hosts: [node1]}
    containers:
      a1: {host: node1, networks: [ov, br]}
      a2: {host: node1, networks: [ov]}
      b1: {host: node2, networks: [ov, ov2]}
      b2: {host: node2, network_mode: 'container:b1'}
      c1: {host: node3, networks: [ov2]}
    """), "p.yaml", INV)


def test_each_host_expects_the_containers_of_the_other_hosts_per_overlay() -> None:
    # b2 shares b1's namespace (no endpoint of its own); node3 has nothing on ov, so no namespace to look in.
    assert expected_peers(PB) == {"node1": {"ov": 1}, "node2": {"ov": 2, "ov2": 1}, "node3": {"ov2": 1}}


def test_gaps_name_the_host_the_network_and_how_far_it_is() -> None:
    seen = {"node1": {"ov": 1}, "node2": {"ov": 0, "ov2": 1}}
    gaps = gossip_gaps(expected_peers(PB), seen)
    assert gaps == [GossipGap("node2", "ov", 0, 2), GossipGap("node3", "ov2", 0, 1)]
    assert str(gaps[0]) == "node2: overlay ov knows 0 of the 2 containers on other hosts"
    assert gossip_gaps(expected_peers(PB), {"node1": {"ov": 1}, "node2": {"ov": 2, "ov2": 1},
                                            "node3": {"ov2": 5}}) == []


def test_neighbour_script_is_bounded_and_quotes_names() -> None:
    script = neighbour_script({"ov": 2, "ov2": 1}, timeout=7)
    assert "end=$(( $(date +%s) + 7 ))" in script and '[ "$(date +%s)" -ge "$end" ] && break' in script
    assert "docker network inspect -f '{{.Id}}' ov " in script and '[ "$n" -ge 2 ]' in script
    assert parse_neighbours("ov 35\nov2 0\nnoise\n") == {"ov": 35, "ov2": 0}


def test_addresses_parsed_from_captured_docker_inspect() -> None:
    with open(os.path.join(DATA, "addresses-node3.txt")) as f:
        found = parse_addresses(f.read())
    assert found["b3c1"] == {"ov": "172.30.0.2"} and len(found) == 5
    assert parse_addresses("/c1 mv=172.29.0.11 ov=172.30.0.3\n/c9 none=\n") == {
        "c1": {"mv": "172.29.0.11", "ov": "172.30.0.3"}, "c9": {}}


def test_warm_pings_every_remote_container_once_from_a_local_one() -> None:
    addresses = {"a1": {"ov": "172.30.0.2", "br": "10.90.0.2"}, "a2": {"ov": "172.30.0.3"},
                 "b1": {"ov": "172.30.0.4", "ov2": "172.31.0.2"}, "c1": {"ov2": "172.31.0.3"}}
    cmd = warm_command(PB, "node2", "ov", addresses)
    assert cmd is not None
    argv = shlex.split(cmd)
    assert argv[:5] == ["timeout", "10", "docker", "exec", "b1"]
    inner = argv[-1]
    assert inner.count("ping -c1 -W1") == 2 and "172.30.0.2" in inner and "172.30.0.3" in inner
    assert "172.30.0.4" not in inner, "not its own containers"
    assert warm_command(PB, "node3", "ov", addresses) is None, "no container of its own on ov"


def test_unknown_containers_are_the_remote_ones_without_a_neighbour_entry() -> None:
    from labctl.plan.overlay import known_ips_script, unknown_containers

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "playbooks", "seed-overlay.yaml"), encoding="utf-8") as fh:
        pb = parse_playbook(fh.read(), "seed-overlay.yaml", INV)
    addresses = {"c1": {"ov": "172.30.0.2", "mv": "172.29.0.11"}, "c2": {"ov": "172.30.0.4"},
                 "c3": {"ov": "172.30.0.3"}, "c4": {"ov": "172.30.0.5"}}
    assert unknown_containers(pb, "node2", "ov", {"172.30.0.4"}, addresses) == ["c1"]
    assert unknown_containers(pb, "node2", "ov", {"172.30.0.2", "172.30.0.4"}, addresses) == []
    assert unknown_containers(pb, "node1", "ov", set(), addresses) == ["c3", "c4"], "only containers of other hosts"
    assert unknown_containers(pb, "node1", "ov", set(), {}) == [], "no address known: nothing to blame"
    assert "ip -4 neigh show nud permanent" in known_ips_script("ov")


def test_gateway_bridge_keeps_clear_of_the_playbooks_subnets() -> None:
    """Docker's rotating pool once gave docker_gwbridge the lab's macvlan subnet (172.29.0.0/16, CI on Engine 26)."""
    from labctl.model.inventory import parse_inventory
    from labctl.model.playbook import parse_playbook
    from labctl.plan.overlay import gateway_bridge_command, gateway_bridge_subnet

    inv = parse_inventory("provider: sandbox\nhosts:\n  store: {roles: [store]}\n  node1: {roles: [docker]}\n"
                          "  node2: {roles: [docker]}\n", "i.yaml")
    pb = parse_playbook("name: t\nnetworks:\n  ov: {driver: overlay, subnet: 172.18.0.0/16}\n"
                        "  mv: {driver: macvlan, subnet: 172.19.0.0/16}\n", "p.yaml", inv)
    assert gateway_bridge_subnet(pb, "node1", []) == "172.20.0.0/16"
    assert gateway_bridge_subnet(pb, "node1", ["172.20.5.0/24", "172.21.0.7", "bogus"]) == "172.22.0.0/16"
    assert gateway_bridge_command("172.22.0.0/16") == (
        "docker network create --subnet 172.22.0.0/16 --opt com.docker.network.bridge.name=docker_gwbridge "
        "--opt com.docker.network.bridge.enable_icc=false --opt com.docker.network.bridge.enable_ip_masquerade=true "
        "docker_gwbridge")
