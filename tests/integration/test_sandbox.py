"""Sandbox hosts for real: 3 hosts with their own sshd and dockerd, then a teardown that leaves nothing.

Tests run in file order; the last ones tear the lab down and list what is left on the machine.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

import pytest

from labctl.executors.remote import Hosts
from labctl.model.inventory import load_inventory
from labctl.plan.sandbox import Names
from labctl.providers import registry

from .conftest import Lab, make_lab

LAB = "itest"
SUBNET = "198.18.77.0/24"
ADDR = {"store": "198.18.77.11", "node1": "198.18.77.12", "node2": "198.18.77.13"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Lab:
    lab = make_lab(tmp_path_factory.mktemp("sandbox"), LAB, SUBNET,
                   {"store": ["store"], "node1": ["docker"], "node2": ["docker"]})
    lab.labctl("sandbox", "down", "-i", str(lab.inventory))  # leftovers of an earlier crashed run
    t0 = time.monotonic()
    res = lab.labctl("sandbox", "up", "-i", str(lab.inventory))
    print(f"\nsandbox up (3 hosts): {time.monotonic() - t0:.1f}s")
    lab.first_up = res  # type: ignore[attr-defined]
    yield lab
    lab.labctl("sandbox", "down", "-i", str(lab.inventory), check=False)


@pytest.fixture(scope="module")
def hosts(lab: Lab):
    os.environ["LABCTL_STATE_DIR"] = lab.env["LABCTL_STATE_DIR"]
    inv = load_inventory(str(lab.inventory))
    with Hosts(registry.endpoints(inv)) as h:
        yield h


def test_first_up_reports_the_hosts(lab: Lab) -> None:
    out = lab.first_up.stdout  # type: ignore[attr-defined]
    assert "3 hosts up" in out
    for name, addr in ADDR.items():
        assert name in out and addr in out


def test_threading_group_reaches_three_distinct_hostnames(hosts: Hosts) -> None:
    names = hosts.group_run("hostname")
    assert {k: v.strip() for k, v in names.items()} == {"store": "store", "node1": "node1", "node2": "node2"}


def test_each_docker_host_has_its_own_engine(hosts: Hosts) -> None:
    ids = hosts.group_run("docker info --format '{{.ID}}'", ["node1", "node2"])
    assert all(re.fullmatch(r"[A-Z0-9]{4}(:[A-Z0-9]{4}){11}", v.strip()) for v in ids.values()), ids
    assert ids["node1"].strip() != ids["node2"].strip()


def test_hosts_ping_each_other_on_the_underlay(hosts: Hosts) -> None:
    for src, dst in (("node1", "node2"), ("node2", "store"), ("store", "node1")):
        res = hosts.conn(src).run(f"busybox ping -c 1 -W 2 {ADDR[dst]}", warn=True, hide=True)
        assert res.ok and "1 packets received" in res.stdout, f"{src} -> {dst}: {res.stdout}{res.stderr}"


def test_hosts_have_no_route_off_the_machine(hosts: Hosts) -> None:
    for name in ("store", "node1", "node2"):
        res = hosts.conn(name).run("ip route get 1.1.1.1", warn=True, hide=True)
        assert not res.ok and "unreachable" in res.stderr.lower(), res.stdout
        assert hosts.conn(name).run("ip route show default", hide=True).stdout.strip() == ""


def test_underlay_interface_and_address(hosts: Hosts) -> None:
    out = hosts.conn("node1").run("ip -o -4 addr show dev eth1", hide=True).stdout
    assert f"{ADDR['node1']}/24" in out


def test_lab_image_runs_ping_in_a_container(hosts: Hosts) -> None:
    res = hosts.conn("node1").run(
        f"docker run --rm --init labctl/busybox:latest ping -c 1 -W 2 {ADDR['node2']}", warn=True, hide=True)
    assert res.ok and "1 packets received" in res.stdout, res.stdout + res.stderr


def test_second_up_changes_nothing(lab: Lab) -> None:
    res = lab.labctl("sandbox", "up", "-i", str(lab.inventory))
    assert "no changes" in res.stdout
    assert "namespaces" not in res.stderr and "started" not in res.stderr


def test_hosts_json_lists_endpoints(lab: Lab) -> None:
    data = json.loads(lab.labctl("hosts", "--json", "-i", str(lab.inventory)).stdout)
    by_name = {h["name"]: h for h in data["hosts"]}
    assert by_name["node2"]["address"] == ADDR["node2"] and by_name["node2"]["roles"] == ["docker"]
    assert os.path.exists(by_name["node2"]["key_file"]) and os.path.exists(by_name["node2"]["known_hosts"])


def test_plain_openssh_uses_the_lab_ssh_config(lab: Lab) -> None:
    cfg = os.path.join(lab.env["LABCTL_STATE_DIR"], LAB, "ssh_config")
    res = subprocess.run(["ssh", "-F", cfg, "-o", "BatchMode=yes", "node2", "hostname"], capture_output=True,
                         text=True, timeout=30)
    assert res.stdout.strip() == "node2", res.stderr


def test_image_load_pushes_a_directory_once(lab: Lab, tmp_path, hosts: Hosts) -> None:
    root = tmp_path / "tiny"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "motd").write_text("hello from labctl\n")
    first = lab.labctl("image", "load", "-i", str(lab.inventory), str(root), "--tag", "labctl/tiny:1")
    assert "loaded on 2 host(s)" in first.stdout
    second = lab.labctl("image", "load", "-i", str(lab.inventory), str(root), "--tag", "labctl/tiny:1")
    assert "loaded on 0 host(s), already present on 2" in second.stdout
    listed = hosts.group_run("docker image ls --format '{{.Repository}}:{{.Tag}}'", ["node1", "node2"])
    assert all("labctl/tiny:1" in v for v in listed.values())


def test_up_repairs_a_crashed_host(lab: Lab, hosts: Hosts) -> None:
    state = json.loads((lab.state_root / LAB / "lab.json").read_text())
    os.kill(state["hosts"]["node2"]["pid"], 9)  # a host dies as if the machine had crashed under it
    hosts.close()
    res = lab.labctl("sandbox", "up", "-i", str(lab.inventory))
    assert "node2" in res.stderr and "was broken" not in res.stdout
    assert re.search(r"node2\s+removing \(not running\)", res.stderr), res.stderr
    assert re.search(r"node1\s+unchanged", res.stderr)
    assert hosts.conn("node2").run("docker info --format '{{.ID}}'", hide=True).ok


def test_second_lab_coexists_and_is_isolated(lab: Lab, tmp_path, hosts: Hosts) -> None:
    other = make_lab(tmp_path, "itest2", "198.18.78.0/24", {"solo": ["docker"]})
    other.env["LABCTL_STATE_DIR"] = lab.env["LABCTL_STATE_DIR"]
    overlapping = make_lab(tmp_path / "o", "itest3", "198.18.77.128/25", {"x": ["docker"]})
    overlapping.env["LABCTL_STATE_DIR"] = lab.env["LABCTL_STATE_DIR"]
    refused = overlapping.labctl("sandbox", "up", "-i", str(overlapping.inventory), check=False)
    assert refused.returncode == 2 and "overlaps sandbox lab 'itest'" in refused.stderr
    try:
        other.labctl("sandbox", "up", "-i", str(other.inventory))
        assert other.ssh("solo", "hostname").stdout.strip() == "solo"
        cross = other.ssh("solo", f"busybox ping -c 1 -W 1 {ADDR['node1']}", check=False)
        assert cross.returncode != 0, "hosts of different labs must not reach each other"
    finally:
        other.labctl("sandbox", "down", "-i", str(other.inventory))
    assert hosts.group_run("hostname", ["node1"])["node1"].strip() == "node1"


def residue(lab: Lab, name: str) -> dict[str, list[str]]:
    """Everything of the lab still on the machine, listed with the system's own tools."""
    n = Names(name)
    state_dir = os.path.join(lab.env["LABCTL_STATE_DIR"], name)
    ps = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout.splitlines()
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout.splitlines()
    routes = subprocess.run(["ip", "-4", "route", "show"], capture_output=True, text=True).stdout.splitlines()
    cgroups = subprocess.run(["find", "/sys/fs/cgroup", "-maxdepth", "6", "-name", f"labctl-{name}-*"],
                             capture_output=True, text=True).stdout.split()
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        mounts = [m for m in fh if state_dir in m or f"/run/netns/{n.switch_netns}" in m]
    return {
        "processes": [p for p in ps if n.marker_prefix in p or state_dir in p or f"labctl-{name}-" in p],
        "netns": [x for x in netns if x == n.switch_netns],
        "interfaces": [x for x in links if f": {n.prefix}" in x],
        "routes": [r for r in routes if r.startswith(SUBNET.split("/")[0][:-1]) and name == LAB],
        "cgroups": cgroups,
        "mounts": mounts,
        "files": [state_dir] if os.path.exists(state_dir) else [],
    }


def test_down_leaves_zero_residue(lab: Lab, hosts: Hosts) -> None:
    hosts.close()
    hosts.conn("node1").run("docker run -d --init --name keep labctl/busybox sleep 600", hide=True)
    hosts.close()
    before = residue(lab, LAB)
    assert before["processes"] and before["netns"] and before["interfaces"] and before["cgroups"]
    thresh = "/proc/sys/net/ipv4/neigh/default/gc_thresh3"
    with open(thresh) as f:
        assert int(f.read()) >= 262144, "while a sandbox lab exists, the shared neighbour table has room"
    saved = "/run/labctl-sandbox-neighbour-table.json"
    original = None
    if os.path.exists(saved):
        with open(saved) as f:
            original = json.load(f)["gc_thresh3"]
    t0 = time.monotonic()
    res = lab.labctl("sandbox", "down", "-i", str(lab.inventory))
    print(f"\nsandbox down (3 hosts, 1 container): {time.monotonic() - t0:.1f}s")
    assert "removed" in res.stdout
    assert residue(lab, LAB) == {k: [] for k in before}
    others = [n for n in os.listdir("/run/netns") if n.startswith("labctl-")] if os.path.isdir("/run/netns") else []
    if original is not None and not others:
        with open(thresh) as f:
            assert int(f.read()) == original, "the last sandbox lab gone, the machine's value is back"
    again = lab.labctl("destroy", "-i", str(lab.inventory))
    assert "nothing to remove" in again.stdout
