"""The seed lab on the plain Linux VXLAN control plane, for real on sandbox hosts: labctl's VXLAN devices carry
the overlay (VXLAN with the playbook's VNI on the wire), verify passes in full (names across hosts expected not to
resolve), faults get their cause, leftovers are removed, `down` leaves no device or FDB entry, and the same hosts
switch between vxlan and swarm."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

import pytest

from labctl.executors.remote import Hosts
from labctl.plan.sandbox import Names

from .conftest import Lab, seed_sandbox, sh

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VXLAN = os.path.join(ROOT, "playbooks", "seed-overlay-vxlan.yaml")
SWARM = os.path.join(ROOT, "playbooks", "seed-overlay-swarm.yaml")
LAB = "ivxl"
ADDR = {"store": "198.18.85.11", "node1": "198.18.85.12", "node2": "198.18.85.13"}
NODES = ("node1", "node2")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    yield from seed_sandbox(tmp_path_factory, LAB, "198.18.85.0/24", (VXLAN, SWARM))


def args(lab: Lab, pb: str = VXLAN) -> list[str]:
    return ["-i", str(lab.inventory), "-p", pb]


def assert_nothing_left(hosts: Hosts) -> None:
    for h in NODES:
        assert sh(hosts, h, "ip -o link show type vxlan").stdout.strip() == "", f"{h}: a VXLAN device is left"
        assert "vxl" not in sh(hosts, h, "bridge fdb show").stdout, f"{h}: an FDB entry is left"
        nets = sorted(sh(hosts, h, "docker network ls --format '{{.Name}}'").stdout.split())
        assert nets == ["bridge", "host", "none"], f"{h}: {nets}"
        assert sh(hosts, h, "docker ps -aq").stdout.strip() == ""
        assert not sh(hosts, h, "test -e /etc/docker/daemon.json").ok, f"{h}: daemon.json was never needed"


def test_vxlan_seed_lab_carries_the_playbooks_vni(lab: Lab, hosts: Hosts) -> None:
    res = lab.labctl("up", *args(lab))
    assert "overlay control plane: vxlan" in res.stderr
    assert "node1: vxlan vxl4200: VNI 4200, local 198.18.85.12, peers 198.18.85.13" in res.stdout
    for h in NODES:
        assert not sh(hosts, h, "test -e /etc/docker/daemon.json").ok, "no daemon.json change"
    status = json.loads(lab.labctl("status", *args(lab), "--json").stdout)
    ov = {n["name"]: n for n in status["networks"]}["ov"]
    assert ov["vni"] == 4200 and ov["driver"] == "macvlan", ov
    control = status["control"]
    assert control["plane"] == "vxlan"
    assert control["hosts"]["node1"]["vtep"] == ADDR["node1"]
    assert control["hosts"]["node2"]["vxlan"] == [{"device": "vxl4200", "vni": 4200, "up": True,
                                                   "peers": [ADDR["node1"]]}]
    c3 = {c["name"]: c for c in status["containers"]}["c3"]["addresses"]["ov"]
    capture = subprocess.Popen(["timeout", "15", "ip", "netns", "exec", Names(LAB).switch_netns, "tcpdump", "-c", "2",
                                "-lni", "sw0", "udp port 4789"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
    time.sleep(1.5)
    ping = sh(hosts, "node1", f"docker exec c1 ping -c 3 -W 2 {c3}")
    out, _ = capture.communicate(timeout=20)
    assert ping.ok and "3 packets received" in ping.stdout
    assert "vni 4200" in out, out
    assert re.search(rf"{re.escape(ADDR['node1'])}\.\d+ > {re.escape(ADDR['node2'])}\.4789: VXLAN", out), out
    verify = lab.labctl("verify", *args(lab))
    assert "OK: 42/42" in verify.stdout
    assert "no changes" in lab.labctl("up", *args(lab)).stdout


def test_trace_goes_through_labctls_vxlan_devices(lab: Lab, hosts: Hosts) -> None:
    res = lab.labctl("trace", *args(lab), "c1", "c3", "--json", "--count", "2")
    data = json.loads(res.stdout)
    assert data["kind"] == "vxlan" and data["vni"] == 4200 and data["received"] == 2
    assert data["vteps"] == [ADDR["node1"], ADDR["node2"]]
    assert f"VXLAN on the wire: {ADDR['node1']} -> {ADDR['node2']}, UDP 4789, VNI 4200" in data["proof"]
    assert any("vxl4200" in h["what"] for h in data["hops"])
    assert all(c["echo_requests"] >= 1 for c in data["captures"])
    dot = lab.labctl("graph", *args(lab), "--format", "dot").stdout
    assert "macvlan on VXLAN 172.30.0.0/16\\nVNI 4200\\ncontrol plane: vxlan" in dot, dot


def test_a_device_down_is_the_cause_and_up_repairs_it(lab: Lab, hosts: Hosts) -> None:
    sh(hosts, "node2", "ip link set vxl4200 down")
    res = lab.labctl("verify", *args(lab), "--json", "-", check=False)
    assert res.returncode == 1
    causes = {c["cause"] for c in json.loads(res.stdout)["checks"] if not c["ok"]}
    assert "node2: VXLAN device vxl4200 of ov is down; `labctl up` repairs it" in causes, causes
    assert "node2: vxlan vxl4200: repaired" in lab.labctl("up", *args(lab)).stdout
    assert "OK: 42/42" in lab.labctl("verify", *args(lab)).stdout


def test_a_leftover_device_of_the_lab_is_removed_by_up(lab: Lab, hosts: Hosts) -> None:
    sh(hosts, "node1", f"ip link add vxl4999 type vxlan id 4999 dstport 4789 local {ADDR['node1']} dev eth1 && "
                       f"ip link set vxl4999 alias labctl:seed-overlay-vxlan:old")
    res = lab.labctl("up", *args(lab))
    assert "node1: vxlan vxl4999: not in the playbook (or another control plane): removed" in res.stdout
    assert not sh(hosts, "node1", "ip link show vxl4999").ok


def test_vxlan_down_leaves_nothing(lab: Lab, hosts: Hosts) -> None:
    res = lab.labctl("down", *args(lab))
    assert "node1: vxl4200: VXLAN device removed" in res.stdout
    assert_nothing_left(hosts)
    assert "no changes" in lab.labctl("down", *args(lab)).stdout


def test_switching_between_vxlan_and_swarm(lab: Lab, hosts: Hosts) -> None:
    for pb, plane in ((SWARM, "swarm"), (VXLAN, "vxlan")):
        assert f"overlay control plane: {plane}" in lab.labctl("up", *args(lab, pb)).stderr
        assert "OK: 42/42" in lab.labctl("verify", *args(lab, pb)).stdout
        lab.labctl("down", *args(lab, pb))
        assert_nothing_left(hosts)
        assert sh(hosts, "node1", "docker info --format '{{.Swarm.LocalNodeState}}'").stdout.strip() == "inactive"
