"""Playbook validation against an inventory: every broken playbook fails with its own message, before any
host is contacted (parse_playbook is pure)."""

from __future__ import annotations

import os
import textwrap

import pytest

from labctl import cli
from labctl.errors import ValidationError
from labctl.executors import remote
from labctl.model.inventory import parse_inventory
from labctl.model.playbook import load_playbook, parse_playbook
from labctl.providers import registry

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
INV_TEXT = textwrap.dedent("""
    name: t
    provider: sandbox
    hosts:
      store: {roles: [store]}
      node1: {roles: [docker]}
      node2: {roles: [docker]}
    """)
INV = parse_inventory(INV_TEXT, "t.yaml")
NO_STORE_INV = parse_inventory("provider: sandbox\nhosts:\n  node1: {roles: [docker]}\n", "n.yaml")

OV = "networks:\n  ov: {driver: overlay, subnet: 172.30.0.0/16}\n"
STORE = "store: {backend: etcd}\n"

BAD = {
    "kvstore overlay without store": ("overlay: {control: kvstore}\n" + OV,
                                      "store: overlay networks with `control: kvstore` need a cluster store"),
    "swarm with a store": ("overlay: {control: swarm}\n" + STORE + OV,
                           "store: not used with `overlay: {control: swarm}`"),
    "unknown control plane": ("overlay: {control: weave}\n" + OV,
                              "overlay.control: 'weave' is not allowed; allowed: auto, kvstore, swarm"),
    "overlay not a mapping": ("overlay: swarm\n" + OV, "overlay: must be a mapping, got a string"),
    "unknown backend": ("store: {backend: redis}\n" + OV,
                        "store.backend: 'redis' is not allowed; allowed: etcd, consul"),
    "overlapping networks": (STORE + OV + "  ov2: {driver: overlay, subnet: 172.30.5.0/24}\n",
                             "networks.ov2.subnet: 172.30.5.0/24 overlaps network 'ov' (172.30.0.0/16)"),
    "overlaps a derived bip": ("networks:\n  b: {driver: bridge, subnet: 172.17.12.0/24}\n",
                               "overlaps docker0 of node1 (172.17.12.1/24)"),
    "overlaps the underlay": ("networks:\n  b: {driver: bridge, subnet: 198.18.0.0/16}\n",
                              "overlaps the underlay 198.18.0.0/24"),
    "gateway outside subnet": ("networks:\n  b: {driver: bridge, subnet: 172.28.0.0/24, gateway: 172.28.1.1}\n",
                               "networks.b.gateway: 172.28.1.1 is not a usable address of subnet 172.28.0.0/24"),
    "ip_range outside subnet": ("networks:\n  b: {driver: bridge, subnet: 172.28.0.0/24, ip_range: 172.28.1.0/25}\n",
                                "networks.b.ip_range: 172.28.1.0/25 is not inside subnet 172.28.0.0/24"),
    "static ip outside subnet": ("networks:\n  b: {driver: bridge, subnet: 172.28.0.0/24}\n"
                                 "containers:\n  cc: {host: node1, networks: {b: {ip: 172.28.9.9}}}\n",
                                 "containers.cc.networks.b.ip: 172.28.9.9 is not a usable address of b's subnet"),
    "static ip duplicated": ("networks:\n  b: {driver: bridge, subnet: 172.28.0.0/24}\n"
                             "containers:\n  cc: {host: node1, networks: {b: {ip: 172.28.0.5}}}\n"
                             "  cd: {host: node1, networks: {b: {ip: 172.28.0.5}}}\n",
                             "containers.cd.networks.b.ip: 172.28.0.5 is also given to 'cc' on b"),
    "static ip is the gateway": ("networks:\n  b: {driver: bridge, subnet: 172.28.0.0/24, gateway: 172.28.0.1}\n"
                                 "containers:\n  cc: {host: node1, networks: {b: {ip: 172.28.0.1}}}\n",
                                 "172.28.0.1 is b's gateway"),
    "static ip in another host's macvlan range": (
        "networks:\n  mv: {driver: macvlan, subnet: 172.29.0.0/16}\n"
        "containers:\n  cc: {host: node1, networks: {mv: {ip: 172.29.200.1}}}\n",
        "172.29.200.1 lies in node2's dynamic range 172.29.192.0/18 of mv"),
    "static ip on the default bridge": ("containers:\n  cc: {host: node1, networks: {bridge: {ip: 172.17.12.5}}}\n",
                                        "user specified IP address is supported on user defined networks only"),
    "duplicate container names": ("containers:\n  cc: {host: node1}\n  cc: {host: node2}\n",
                                  "duplicate key 'cc' (first at line 2)"),
    "unknown host": ("containers:\n  cc: {host: node9}\n",
                     "containers.cc.host: 'node9' is not a docker host of the inventory; docker hosts: node1, node2"),
    "container on the store host": ("containers:\n  cc: {host: store}\n", "'store' is not a docker host"),
    "unknown network": ("containers:\n  cc: {host: node1, networks: [nope]}\n",
                        "containers.cc.networks.nope: no network 'nope' in this playbook"),
    "unknown container in network_mode": ("containers:\n  cc: {host: node1, network_mode: 'container:ghost'}\n",
                                          "no container 'ghost' in this playbook"),
    "container: on another host": ("containers:\n  ca: {host: node1}\n"
                                   "  cb: {host: node2, network_mode: 'container:ca'}\n",
                                   "'ca' runs on node1, 'cb' on node2: a shared network stack needs both on the "
                                   "same host"),
    "bad container name": ("containers:\n  '-bad': {host: node1}\n", "is not a container name Docker accepts"),
    "one-letter container name": ("containers:\n  x: {host: node1}\n",
                                  "containers.x: 'x' is not a container name Docker accepts (2 to 63 characters"),
    "bad network name": ("networks:\n  'my net': {driver: bridge, subnet: 172.28.0.0/24}\n",
                         "'my net' is not a name Docker accepts"),
    "predefined network name": ("networks:\n  host: {driver: bridge, subnet: 172.28.0.0/24}\n",
                                "'host' is one of Docker's predefined networks"),
    "local network not on that host": (
        "networks:\n  b: {driver: bridge, subnet: 172.28.0.0/24, hosts: [node2]}\n"
        "containers:\n  cc: {host: node1, networks: [b]}\n",
        "network 'b' (bridge) does not exist on host 'node1'; its hosts: node2"),
    "hosts on overlay": (STORE + "networks:\n  ov: {driver: overlay, subnet: 172.30.0.0/16, hosts: [node1]}\n",
                         "an overlay network is global"),
    "networks and network_mode": ("networks:\n  b: {driver: bridge, subnet: 172.28.0.0/24}\n"
                                  "containers:\n  cc: {host: node1, networks: [b], network_mode: host}\n",
                                  "containers.cc.network_mode: cannot be combined with `networks`"),
    "unknown network mode": ("containers:\n  cc: {host: node1, network_mode: nat}\n",
                             "'nat' is not allowed; allowed: bridge, host, none, container:<name>"),
    "bridge_name too long": ("networks:\n  b: {driver: bridge, subnet: 172.28.0.0/24, "
                             "bridge_name: a-very-long-bridge}\n",
                             "networks.b.bridge_name: 'a-very-long-bridge' is not a valid Linux interface name"),
    "parent on a bridge": ("networks:\n  b: {driver: bridge, subnet: 172.28.0.0/24, parent: eth1}\n",
                           "networks.b.parent: only for driver 'macvlan'"),
    "ports with host mode": ("containers:\n  cc: {host: node1, network_mode: host, ports: ['80:80']}\n",
                             "published ports have no effect with network_mode 'host'"),
    "bad port": ("containers:\n  cc: {host: node1, ports: ['eighty']}\n",
                 "containers.cc.ports[0]: 'eighty': not of the form [IP:][HOSTPORT:]PORT"),
    "port out of range": ("containers:\n  cc: {host: node1, ports: ['99999:80']}\n",
                          "containers.cc.ports[0]: '99999:80': port 99999 is outside 1-65535"),
    "port with a bad address": ("containers:\n  cc: {host: node1, ports: ['300.1.1.1:80:80']}\n",
                                "300.1.1.1 is not an IPv4 address"),
    "host port published twice": ("containers:\n  cc: {host: node1, ports: ['8080:80']}\n"
                                  "  cd: {host: node1, ports: ['0.0.0.0:8080:81']}\n",
                                  "containers.cd.ports: host port 8080/tcp on node1 is also published by 'cc'"),
    "bad mtu option": ("networks:\n  b: {driver: bridge, subnet: 172.28.0.0/24, options: "
                       "{com.docker.network.driver.mtu: '1400x'}}\n",
                       "networks.b.options.com.docker.network.driver.mtu: '1400x' is not an MTU"),
    "bad macvlan mode": ("networks:\n  m: {driver: macvlan, subnet: 172.28.0.0/24, options: {macvlan_mode: fast}}\n",
                         "networks.m.options.macvlan_mode: 'fast' is not allowed"),
    "bridge option on overlay": (STORE + "networks:\n  ov: {driver: overlay, subnet: 172.30.0.0/16, options: "
                                 "{com.docker.network.bridge.enable_icc: 'true'}}\n", "only for driver 'bridge'"),
    "alias is another container's name": (
        "networks:\n  b: {driver: bridge, subnet: 172.28.0.0/24}\n"
        "containers:\n  cc: {host: node1, networks: {b: {aliases: [cd]}}}\n  cd: {host: node1, networks: [b]}\n",
        "containers.cc.networks.b.aliases: 'cd' is the name of another container on b"),
    "to_name not a name": ("containers:\n  cc: {host: node1}\nexpect:\n  - {from: cc, to_name: 'a b;x', "
                           "expect: reach}\n", "expect[0].to_name: 'a b;x' is not a DNS name"),
    "mapping in a networks list": ("networks:\n  b: {driver: bridge, subnet: 172.28.0.0/24}\n"
                                   "containers:\n  cc: {host: node1, networks: [{b: {}}]}\n",
                                   "a list of networks holds names only"),
    "list as expect source": ("containers:\n  cc: {host: node1}\nexpect:\n  - {from: [cc], to: cc, "
                              "expect: reach}\n", "`from` is a container name"),
    "format field in bip": ("docker0: {bip: '{0}.{octet}.1/24'}\n", "docker0.bip.node1: '{0}.12.1/24' is not"),
    "data_dir outside labctl": ("store: {backend: etcd, data_dir: /etc}\n" + OV,
                                "store.data_dir: '/etc' must be a directory under /var/lib/labctl/"),
    "overlapping bips": ("docker0: {bip: {node1: 172.17.5.1/24, node2: 172.17.5.2/24}}\n",
                         "docker0.bip.node2: 172.17.5.2/24 overlaps docker0 of node1"),
    "unknown top-level field": ("netwroks: {}\n", "netwroks: unknown field; allowed: name, overlay, store, docker0"),
    "image on etcd store": ("store: {backend: etcd, image: hashicorp/consul:1.15}\n",
                            "store.image: only for backend 'consul'"),
    "shell in data_dir": ("store: {backend: etcd, data_dir: '/var/lib/x; rm -rf /'}\n" + OV,
                          "store.data_dir: '/var/lib/x; rm -rf /' must be a directory under"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_broken_playbook_message(case: str) -> None:
    text, expected = BAD[case]
    with pytest.raises(ValidationError) as err:
        parse_playbook(text, "pb.yaml", INV)
    rendered = err.value.render()
    assert expected in rendered, rendered
    assert "pb.yaml: " in rendered


@pytest.mark.parametrize("verb", ["up", "down", "verify"])
@pytest.mark.parametrize("case", sorted(BAD))
def test_broken_playbook_through_the_cli_exits_2_before_any_host(case: str, verb: str, tmp_path, monkeypatch,
                                                                 capsys) -> None:
    """The real `labctl up/down/verify` path: any attempt to resolve or reach a host fails the test."""
    def touched(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"{verb} tried to reach a host for a broken playbook ({case})")

    monkeypatch.setattr(registry, "endpoints", touched)
    monkeypatch.setattr(remote.Hosts, "__init__", touched)
    (tmp_path / "t.yaml").write_text(INV_TEXT)
    (tmp_path / "pb.yaml").write_text(BAD[case][0])
    code = cli.main([verb, "-i", str(tmp_path / "t.yaml"), "-p", str(tmp_path / "pb.yaml")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert BAD[case][1] in err and "nothing was changed on any host" in err


def test_store_needs_a_store_host_in_the_inventory() -> None:
    with pytest.raises(ValidationError) as err:
        parse_playbook(STORE + OV, "pb.yaml", NO_STORE_INV)
    assert "the inventory n.yaml has no host with role 'store'" in err.value.render()


def test_every_problem_is_reported_at_once() -> None:
    text = "networks:\n  b: {driver: vxlan, subnet: 1.2.3.4/8}\ncontainers:\n  cc: {host: nowhere}\n"
    with pytest.raises(ValidationError) as err:
        parse_playbook(text, "pb.yaml", INV)
    fields = {p.field for p in err.value.problems}
    assert {"networks.b.driver", "networks.b.subnet", "containers.cc.host"} <= fields


def test_seed_overlay_playbook() -> None:
    pb = load_playbook(os.path.join(ROOT, "playbooks", "seed-overlay.yaml"), INV)
    assert pb.store is not None and pb.store.url == "etcd://198.18.0.11:2379"
    assert pb.bips == {"node1": "172.17.12.1/24", "node2": "172.17.13.1/24"}
    mv = pb.network("mv")
    assert mv.parent == "eth1" and mv.hosts == ("node1", "node2")
    assert dict(mv.host_ranges) == {"node1": "172.29.128.0/18", "node2": "172.29.192.0/18"}
    assert [c.host for c in pb.containers] == ["node1", "node1", "node2", "node2"]


def test_consul_variant_and_network_modes_are_valid() -> None:
    pb = load_playbook(os.path.join(ROOT, "playbooks", "seed-overlay-consul.yaml"), INV)
    assert pb.store is not None and pb.store.backend == "consul" and pb.store.port == 8500
    modes = load_playbook(os.path.join(ROOT, "playbooks", "network-modes.yaml"), INV)
    assert {c.name: c.network_mode for c in modes.containers}["sidecar"] == "container:user1"
    assert modes.network("userbr").bridge_name == "br-userbr"


def test_bip_off_and_explicit() -> None:
    assert parse_playbook("docker0: {bip: off}\n", "p.yaml", INV).bips == {}
    pb = parse_playbook("docker0: {bip: {node1: 10.200.1.1/24}}\n", "p.yaml", INV)
    assert pb.bips == {"node1": "10.200.1.1/24"}


def test_validate_command_exits_2_on_a_broken_playbook(tmp_path, capsys) -> None:
    from labctl import cli
    pb = tmp_path / "pb.yaml"
    pb.write_text(BAD["container: on another host"][0])
    inv = os.path.join(ROOT, "inventories", "sandbox.yaml")
    assert cli.main(["validate", "-i", inv, "-p", str(pb)]) == 2
    assert "a shared network stack needs both on the same host" in capsys.readouterr().err
    assert cli.main(["validate", "-i", inv, "-p", os.path.join(ROOT, "playbooks", "seed-overlay.yaml")]) == 0
    assert "mv (macvlan) on node2: dynamic addresses from 172.29.192.0/18" in capsys.readouterr().out
