"""`labctl up` / `down` for real: the seed overlay lab and the single-host network modes on sandbox hosts."""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import time

import pytest

from labctl.executors.lab import overlay_vni
from labctl.executors.remote import Hosts
from labctl.model.inventory import load_inventory
from labctl.plan.sandbox import Names
from labctl.providers import registry

from .conftest import Lab, make_lab

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEED = os.path.join(ROOT, "playbooks", "seed-overlay.yaml")
MODES = os.path.join(ROOT, "playbooks", "network-modes.yaml")
LAB = "ilab"
ADDR = {"store": "198.18.79.11", "node1": "198.18.79.12", "node2": "198.18.79.13"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = make_lab(tmp_path_factory.mktemp("lab"), LAB, "198.18.79.0/24",
                   {"store": ["store"], "node1": ["docker"], "node2": ["docker"]})
    lab.labctl("sandbox", "down", "-i", str(lab.inventory))
    lab.labctl("sandbox", "up", "-i", str(lab.inventory))
    yield lab
    lab.labctl("sandbox", "down", "-i", str(lab.inventory), check=False)


@pytest.fixture
def hosts(lab: Lab):
    os.environ["LABCTL_STATE_DIR"] = lab.env["LABCTL_STATE_DIR"]
    with Hosts(registry.endpoints(load_inventory(str(lab.inventory)))) as h:
        yield h


def sh(hosts: Hosts, host: str, cmd: str) -> subprocess.CompletedProcess | object:
    return hosts.conn(host).run(cmd, hide=True, warn=True)


def test_broken_playbook_exits_2_and_touches_no_host(lab: Lab, tmp_path, hosts: Hosts) -> None:
    before = sh(hosts, "node1", "docker network ls -q; cat /etc/docker/daemon.json 2>/dev/null").stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("store: {backend: etcd}\nnetworks:\n  ov: {driver: overlay, subnet: 198.18.79.0/25}\n"
                   "containers:\n  a: {host: node1}\n  b: {host: node2, network_mode: 'container:a'}\n")
    res = lab.labctl("up", "-i", str(lab.inventory), "-p", str(bad), check=False)
    assert res.returncode == 2
    assert "overlaps the underlay" in res.stderr and "needs both on the same host" in res.stderr
    assert sh(hosts, "node1", "docker network ls -q; cat /etc/docker/daemon.json 2>/dev/null").stdout == before
    assert not sh(hosts, "store", "start-stop-daemon --status --pidfile /run/labctl/etcd.pid").ok


def test_seed_overlay_up_vxlan_and_macvlan(lab: Lab, hosts: Hosts) -> None:
    res = lab.labctl("up", "-i", str(lab.inventory), "-p", SEED)
    assert "network ov: create overlay 172.30.0.0/16" in res.stdout
    vni = overlay_vni(hosts.conn("node2"), "ov")
    assert vni is not None, "the overlay is visible on node2, where its containers joined its VXLAN"
    switch = Names(LAB).switch_netns
    capture = subprocess.Popen(["timeout", "15", "ip", "netns", "exec", switch, "tcpdump", "-c", "2", "-lni", "sw0",
                                "udp port 4789"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(1.5)
    ping = sh(hosts, "node1", "docker exec c1 ping -c 3 -W 2 c3")
    out, _ = capture.communicate(timeout=20)
    assert ping.ok and "3 packets received" in ping.stdout, ping.stdout
    assert f"vni {vni}" in out, out
    assert re.search(rf"{re.escape(ADDR['node1'])}\.\d+ > {re.escape(ADDR['node2'])}\.4789: VXLAN", out), out
    macvlan = sh(hosts, "node1", "docker exec c1 ping -c 2 -W 2 172.29.0.13")
    assert macvlan.ok and "2 packets received" in macvlan.stdout
    own_host = sh(hosts, "node1", f"docker exec c1 ping -c 1 -W 1 {ADDR['node1']}")
    assert "0 packets received" in own_host.stdout, "a macvlan container cannot reach its own host"
    addrs = sh(hosts, "node2", "docker exec c4 ip -o -4 addr show").stdout
    mine = [ipaddress.ip_interface(a).ip for a in re.findall(r"inet (\S+)", addrs)]
    assert any(ip in ipaddress.ip_network("172.30.0.0/16") for ip in mine)
    assert ipaddress.ip_address("172.29.0.14") in mine, "static macvlan address"
    # (Docker drops the docker_gwbridge endpoint once a network with a gateway, here macvlan, is attached.)


def test_second_up_changes_nothing(lab: Lab) -> None:
    res = lab.labctl("up", "-i", str(lab.inventory), "-p", SEED)
    assert "no changes" in res.stdout, res.stdout


def test_down_leaves_nothing_of_the_lab(lab: Lab, hosts: Hosts) -> None:
    res = lab.labctl("down", "-i", str(lab.inventory), "-p", SEED)
    assert "store keys under /docker removed" in res.stdout
    for h in ("node1", "node2"):
        assert sh(hosts, h, "docker ps -aq").stdout.strip() == ""
        assert sorted(sh(hosts, h, "docker network ls --format '{{.Name}}'").stdout.split()) == \
            ["bridge", "host", "none"]
        assert not sh(hosts, h, "test -e /etc/docker/daemon.json").ok
    assert not sh(hosts, "store", "start-stop-daemon --status --pidfile /run/labctl/etcd.pid").ok
    assert "no changes" in lab.labctl("down", "-i", str(lab.inventory), "-p", SEED).stdout


def test_network_modes_on_one_host(lab: Lab, hosts: Hosts) -> None:
    lab.labctl("up", "-i", str(lab.inventory), "-p", MODES)
    try:
        ip2 = sh(hosts, "node1", "docker inspect -f '{{.NetworkSettings.IPAddress}}' default2").stdout.strip()
        assert ip2.startswith("172.17.12."), "docker0 uses the bip derived from the host address"
        assert sh(hosts, "node1", f"docker exec default1 ping -c1 -W2 {ip2}").ok, "default bridge: reach by IP"
        assert not sh(hosts, "node1", "docker exec default1 ping -c1 -W1 default2").ok, "but not by name"
        assert sh(hosts, "node1", "docker exec user2 ping -c1 -W2 user1").ok, "user bridge: by name"
        assert sh(hosts, "node1", "docker exec user2 ping -c1 -W2 web").ok, "and by alias"
        ip_user2 = sh(hosts, "node1", "docker exec user2 ip -o -4 addr show eth0").stdout
        found = [ipaddress.ip_interface(a).ip for a in re.findall(r"inet (\S+)", ip_user2)]
        assert found and found[0] in ipaddress.ip_network("172.28.0.128/25"), f"dynamic address from ip_range: {found}"
        assert "br-userbr" in sh(hosts, "node1", "ip -o link show br-userbr").stdout
        assert ADDR["node1"] in sh(hosts, "node1", "docker exec hostmode ip -o -4 addr").stdout
        links = sh(hosts, "node1", "docker exec isolated ip -o link").stdout.splitlines()
        assert len(links) == 1 and links[0].startswith("1: lo:"), f"none: only lo, got {links}"
        side = sh(hosts, "node1", "docker exec sidecar ip -o -4 addr").stdout
        assert "172.28.0.10" in side, "container:user1 shares user1's addresses"
    finally:
        lab.labctl("down", "-i", str(lab.inventory), "-p", MODES)
