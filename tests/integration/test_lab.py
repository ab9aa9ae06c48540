"""`labctl up` / `down` for real: the seed overlay lab and the single-host network modes on sandbox hosts."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import time

import pytest

from labctl.executors.images import busybox_rootfs
from labctl.executors.remote import Hosts
from labctl.plan.overlay import overlay_ns
from labctl.plan.sandbox import Names

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


def sh(hosts: Hosts, host: str, cmd: str) -> subprocess.CompletedProcess | object:
    return hosts.conn(host).run(cmd, hide=True, warn=True)


def test_broken_playbook_exits_2_and_touches_no_host(lab: Lab, tmp_path, hosts: Hosts) -> None:
    before = sh(hosts, "node1", "docker network ls -q; cat /etc/docker/daemon.json 2>/dev/null").stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("store: {backend: etcd}\nnetworks:\n  ov: {driver: overlay, subnet: 198.18.79.0/25}\n"
                   "containers:\n  ca: {host: node1}\n  cb: {host: node2, network_mode: 'container:ca'}\n")
    res = lab.labctl("up", "-i", str(lab.inventory), "-p", str(bad), check=False)
    assert res.returncode == 2
    assert "overlaps the underlay" in res.stderr and "needs both on the same host" in res.stderr
    assert sh(hosts, "node1", "docker network ls -q; cat /etc/docker/daemon.json 2>/dev/null").stdout == before
    assert not sh(hosts, "store", "start-stop-daemon --status --pidfile /run/labctl/etcd.pid").ok


def test_provision_on_sandbox_hosts_finds_everything_present(lab: Lab) -> None:
    """The etcd path of provisioning, for real: sandbox hosts share this machine's docker.io and etcd packages."""
    res = lab.labctl("provision", "-i", str(lab.inventory), "-p", SEED)
    assert "provision seed-overlay: no changes" in res.stdout, res.stdout
    for host in ("node1", "node2"):
        assert re.search(rf"{host}\s+docker: Docker 20\.10\.\d+\+dfsg1 present", res.stderr), res.stderr
    assert re.search(r"store\s+etcd: etcd and etcdctl present", res.stderr), res.stderr


def test_packages_come_through_the_controller_over_the_hosts_ssh_connection(lab: Lab, hosts: Hosts,
                                                                           tmp_path) -> None:
    """`packages: controller` for real: apt-get on a sandbox host fetches from a repository that only the controller
    reaches (an HTTP server on the controller's loopback stands for the Debian archive), through the proxy forwarded
    over the host's own SSH connection. The whole path with the Debian archive runs in `make vms-e2e`."""
    import http.server
    import threading

    from labctl.executors.aptproxy import served_packages

    pkg = tmp_path / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text("Package: labctl-probe\nVersion: 1.0\nArchitecture: all\n"
                                            "Maintainer: labctl <labctl@invalid>\nDescription: test package\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["dpkg-deb", "-Zgzip", "-b", str(pkg), str(repo / "labctl-probe_1.0_all.deb")], check=True,
                   capture_output=True)
    packages = subprocess.run(["dpkg-scanpackages", "."], cwd=repo, check=True, capture_output=True).stdout
    (repo / "Packages").write_bytes(packages)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: Quiet(*a, directory=str(repo)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    apt = ('set -e; d=$(mktemp -d); trap \'rm -rf "$d"\' EXIT; mkdir -p "$d/lists/partial" "$d/archives/partial"; '
           f'echo "deb [trusted=yes] http://127.0.0.1:{port}/ ./" > "$d/sources.list"; '
           'o="-q -o Dir::Etc::SourceList=$d/sources.list -o Dir::Etc::SourceParts=/nonexistent '
           '-o Dir::State::Lists=$d/lists -o Dir::Cache=$d -o Dir::Cache::archives=$d/archives {proxy}"; '
           'apt-get $o update; cd "$d"; apt-get $o download labctl-probe; ls *.deb')
    def listening() -> set[str]:
        return set(sh(hosts, "node1", "ss -Htln | awk '{print $4}'").stdout.split())

    try:
        unreachable = sh(hosts, "node1", apt.replace("{proxy}", ""))
        before = listening()
        with served_packages({"node1": hosts.conn("node1")}, {"127.0.0.1"}) as (proxies, served):
            during = listening()
            res = sh(hosts, "node1", apt.replace("{proxy}", f"-o Acquire::http::Proxy={proxies['node1']}"))
        after = listening()
    finally:
        server.shutdown()
        server.server_close()
    assert not unreachable.ok, "the controller's loopback is not the host's: without the forward apt finds nothing"
    assert res.ok, res.stdout + res.stderr
    assert res.stdout.strip().splitlines()[-1] == "labctl-probe_1.0_all.deb"
    assert served.requests >= 2 and served.bytes > len(packages), (served.requests, served.bytes)
    assert not served.refused
    assert during - before == {proxies["node1"].removeprefix("http://")}, "sshd listens on the host's loopback only"
    assert after == before, "the forward is gone once the packages are in"


def test_seed_overlay_up_vxlan_and_macvlan(lab: Lab, hosts: Hosts) -> None:
    res = lab.labctl("up", "-i", str(lab.inventory), "-p", SEED)
    assert "network ov: create overlay 172.30.0.0/16" in res.stdout
    status = json.loads(lab.labctl("status", "-i", str(lab.inventory), "-p", SEED, "--json").stdout)
    vni = next(n["vni"] for n in status["networks"] if n["name"] == "ov")
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
    status = json.loads(lab.labctl("status", "-i", str(lab.inventory), "-p", SEED, "--json").stdout)
    nets = {n["name"]: n for n in status["networks"]}
    assert nets["ov"]["scope"] == "global" and nets["ov"]["vni"] == vni, "status shows the VNI seen on the wire"
    assert nets["mv"]["scope"] == "local" and nets["mv"]["hosts"] == ["node1", "node2"]
    ctrs = {c["name"]: c for c in status["containers"]}
    assert ctrs["c4"]["host"] == "node2" and ctrs["c4"]["addresses"]["mv"] == "172.29.0.14"
    assert ipaddress.ip_address(ctrs["c1"]["addresses"]["ov"]) in ipaddress.ip_network("172.30.0.0/16")
    assert status["missing"] == [] and status["store"]["running"] is True
    assert status["control"]["plane"] == "kvstore"
    assert {h: v["vtep"] for h, v in status["control"]["hosts"].items()} == \
        {"node1": ADDR["node1"], "node2": ADDR["node2"]}, "the VTEPs are the cluster-advertise addresses"


def test_second_up_changes_nothing(lab: Lab) -> None:
    lab.labctl("up", "-i", str(lab.inventory), "-p", SEED)     # the lab, whatever the tests before left
    res = lab.labctl("up", "-i", str(lab.inventory), "-p", SEED)
    assert "no changes" in res.stdout, res.stdout


OVERLAY_NS = overlay_ns("ov")


def test_up_repairs_a_host_that_missed_remote_containers(lab: Lab, hosts: Hosts) -> None:
    """As when serf loses events under load: node2 forgets node1's containers (its overlay's neighbour entries,
    and its containers' ARP caches, as if they had never talked); `up` finds and fixes it."""
    forget = (f'{OVERLAY_NS}; for ip in $(nsenter --net=$ns ip -4 neigh show nud permanent | cut -d" " -f1); '
              'do nsenter --net=$ns ip neigh del $ip dev vxlan0; done; for c in c3 c4; do '
              'nsenter --net=/proc/$(docker inspect -f "{{.State.Pid}}" $c)/ns/net ip neigh flush all; done')
    count = f"{OVERLAY_NS}; nsenter --net=$ns ip -4 neigh show nud permanent | grep -c lladdr"
    assert sh(hosts, "node2", count).stdout.strip() == "2"
    sh(hosts, "node2", forget)
    assert sh(hosts, "node2", count).stdout.strip() == "0"
    res = lab.labctl("up", "-i", str(lab.inventory), "-p", SEED)
    assert "node2 knows 0/2 on ov: one ping to each remote container" in res.stderr, res.stderr
    assert "no changes" in res.stdout
    assert sh(hosts, "node2", count).stdout.strip() == "2"


def test_another_lab_on_the_same_hosts_is_refused(lab: Lab, tmp_path, hosts: Hosts) -> None:
    other = tmp_path / "other.yaml"
    other.write_text("name: other\nnetworks:\n  b: {driver: bridge, subnet: 10.97.0.0/24, hosts: [node1]}\n")
    res = lab.labctl("up", "-i", str(lab.inventory), "-p", str(other), check=False)
    assert res.returncode == 2, res.stderr
    assert "[node1] the host is in use by lab 'seed-overlay'" in res.stderr
    assert sh(hosts, "node1", "docker exec c1 ping -c1 -W2 c3").ok, "the running lab was not disturbed"


def test_down_leaves_nothing_of_the_lab(lab: Lab, hosts: Hosts) -> None:
    res = lab.labctl("down", "-i", str(lab.inventory), "-p", SEED)
    assert "store keys under docker/ removed" in res.stdout
    for h in ("node1", "node2"):
        assert sh(hosts, h, "docker ps -aq").stdout.strip() == ""
        assert sorted(sh(hosts, h, "docker network ls --format '{{.Name}}'").stdout.split()) == \
            ["bridge", "host", "none"]
        assert not sh(hosts, h, "test -e /etc/docker/daemon.json").ok
        assert "inet 172.17.0.1/16 " in sh(hosts, h, "ip -o -4 addr show docker0").stdout, \
            "docker0 has its address from before the lab's bip again"
    keys = subprocess.run(["ip", "netns", "exec", Names(LAB).switch_netns, "true"], capture_output=True)
    assert keys.returncode == 0  # the sandbox itself stays up; only the lab is gone
    assert not sh(hosts, "store", "start-stop-daemon --status --pidfile /run/labctl/etcd.pid").ok
    assert not sh(hosts, "store", "test -e /var/lib/labctl/etcd").ok, "the store's data goes with the lab"
    again = lab.labctl("down", "-i", str(lab.inventory), "-p", SEED)
    assert "no changes" in again.stdout and "etcd started" not in again.stderr, "a second down starts nothing"
    status = json.loads(lab.labctl("status", "-i", str(lab.inventory), "--all-labs", "--json").stdout)
    assert status["networks"] == [] and status["containers"] == [], "nothing labelled by labctl is left"


def untouched(hosts: Hosts) -> None:
    assert not sh(hosts, "node1", "test -e /etc/docker/daemon.json").ok
    assert not sh(hosts, "store", "start-stop-daemon --status --pidfile /run/labctl/etcd.pid").ok


def test_name_taken_by_hand_is_refused_before_any_change(lab: Lab, hosts: Hosts) -> None:
    sh(hosts, "node1", "docker network create --subnet 10.96.0.0/24 mv")
    try:
        res = lab.labctl("up", "-i", str(lab.inventory), "-p", SEED, check=False)
        assert res.returncode == 2, res.stderr
        assert "[node1] networks.mv: a network named 'mv' already exists there and is not this lab's" in res.stderr
        untouched(hosts)
    finally:
        sh(hosts, "node1", "docker network rm mv")


def test_docker_error_is_shown_with_entry_and_hint(lab: Lab, tmp_path, hosts: Hosts) -> None:
    sh(hosts, "node1", "docker run -d --restart always --name foreign -p 8081:80 labctl/busybox:latest sleep 600")
    pb = tmp_path / "ports.yaml"
    pb.write_text("name: ports\ndocker0: {bip: off}\nnetworks:\n  pt: {driver: bridge, subnet: 10.95.0.0/24, "
                  "hosts: [node1]}\ncontainers:\n  web: {host: node1, networks: {pt: {}}, ports: ['8081:80']}\n")
    try:
        res = lab.labctl("up", "-i", str(lab.inventory), "-p", str(pb), check=False)
        assert res.returncode == 1
        assert "for containers.web failed" in res.stderr
        assert "Docker says: " in res.stderr and "Bind for 0.0.0.0:8081 failed: port is already allocated" in res.stderr
        assert "hint: 0.0.0.0:8081 is already published on node1" in res.stderr
        assert "Traceback" not in res.stderr
    finally:
        lab.labctl("down", "-i", str(lab.inventory), "-p", str(pb))
        sh(hosts, "node1", "docker rm -f foreign")


def test_images_loaded_from_the_controller_or_refused_clearly(lab: Lab, tmp_path, hosts: Hosts) -> None:
    (tmp_path / "extra.tar").write_bytes(busybox_rootfs("labctl/extra:1").data)
    body = "docker0: {bip: off}\ncontainers:\n  xx: {host: node1, image: '%s'}\n"
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: imgs\n" + body % "nosuch/img:1")
    res = lab.labctl("up", "-i", str(lab.inventory), "-p", str(bad), check=False)
    assert res.returncode == 1
    assert "[node1] `docker pull nosuch/img:1` for containers.xx failed" in res.stderr
    assert "no registry is reachable from node1 and the playbook lists no archive for nosuch/img:1" in res.stderr
    untouched(hosts)
    good = tmp_path / "good.yaml"
    good.write_text("name: imgs\nimages: {'labctl/extra:1': extra.tar}\n" + body % "labctl/extra:1")
    try:
        res = lab.labctl("up", "-i", str(lab.inventory), "-p", str(good))
        assert "node1: image labctl/extra:1 loaded from the controller" in res.stdout
        assert sh(hosts, "node1", "docker exec xx true").ok
    finally:
        lab.labctl("down", "-i", str(lab.inventory), "-p", str(good))
        sh(hosts, "node1", "docker rmi labctl/extra:1")


def test_changed_network_is_recreated_with_its_containers(lab: Lab, tmp_path, hosts: Hosts) -> None:
    pb = tmp_path / "change.yaml"
    text = ("name: change\ndocker0: {bip: off}\nnetworks:\n  b: {driver: bridge, subnet: 10.94.%d.0/24, "
            "hosts: [node1]}\ncontainers:\n  xx: {host: node1, networks: {b: {}}}\n"
            "  yy: {host: node1, networks: {b: {}}}\n")
    pb.write_text(text % 1)
    try:
        lab.labctl("up", "-i", str(lab.inventory), "-p", str(pb))
        pb.write_text(text % 2)
        res = lab.labctl("up", "-i", str(lab.inventory), "-p", str(pb))
        assert "network b: settings changed: recreate" in res.stdout
        addr = sh(hosts, "node1", "docker inspect -f '{{.NetworkSettings.Networks.b.IPAddress}}' xx").stdout.strip()
        assert addr.startswith("10.94.2."), addr
        assert sh(hosts, "node1", "docker exec xx ping -c1 -W2 yy").ok
    finally:
        lab.labctl("down", "-i", str(lab.inventory), "-p", str(pb))


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
        pb = ("-i", str(lab.inventory), "-p", MODES, "--json", "--count", "1")
        user = json.loads(lab.labctl("trace", *pb, "user2", "user1").stdout)
        assert user["kind"] == "bridge" and user["received"] == 1
        assert "switched on br-userbr in node1: no encapsulation, the echo never left the host" in user["proof"]
        assert [c["name"] for c in user["captures"]] == ["user2-eth0", "node1-br-userbr", "user1-eth0"]
        default = json.loads(lab.labctl("trace", *pb, "default1", ip2).stdout)
        assert default["kind"] == "bridge" and default["dst"] == "default2" and default["received"] == 1
        assert any(h["what"].startswith("docker0 (bridge on the host") for h in default["hops"])
        out = json.loads(lab.labctl("trace", *pb, "default1", ADDR["node2"]).stdout)
        assert out["kind"] == "nat" and out["received"] == 1
        assert f"NAT: on the underlay the echo request leaves from {ADDR['node1']}, not {out['src_ip']}" in out["proof"]
    finally:
        lab.labctl("down", "-i", str(lab.inventory), "-p", MODES)
