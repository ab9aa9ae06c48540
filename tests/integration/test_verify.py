"""`labctl verify` for real on sandbox hosts: the seed lab (plus an isolated container) passes, and each fault
fails exactly the checks it should, with the right cause; JSON and JUnit agree with the exit code."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

from labctl.executors.remote import Hosts

from .conftest import Lab, make_lab, sh

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEED = os.path.join(ROOT, "playbooks", "seed-overlay.yaml")
LAB = "ivfy"


def with_isolated_container(text: str) -> str:
    """The seed lab plus c5 alone on a bridge of node1: so that container-to-container isolation is checked; and
    two name expectations: an alias across hosts resolves, a name no one has does not."""
    text = text.replace("networks:\n", "networks:\n  iso: {driver: bridge, subnet: 172.28.5.0/24, hosts: [node1]}\n", 1)
    text = text.replace("containers:\n", "containers:\n  c5: {host: node1, networks: [iso]}\n", 1)
    return text + ("expect:\n  - {from: c1, to_name: web2, expect: reach}\n"
                   "  - {from: c4, to_name: nosuch, expect: isolated}\n")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("verify")
    lab = make_lab(tmp, LAB, "198.18.81.0/24", {"store": ["store"], "node1": ["docker"], "node2": ["docker"]})
    lab.playbook = tmp / "lab.yaml"
    with open(SEED, encoding="utf-8") as fh:
        lab.playbook.write_text(with_isolated_container(fh.read()))
    lab.labctl("sandbox", "down", "-i", str(lab.inventory))
    lab.labctl("sandbox", "up", "-i", str(lab.inventory))
    lab.labctl("up", "-i", str(lab.inventory), "-p", str(lab.playbook))
    yield lab
    lab.labctl("down", "-i", str(lab.inventory), "-p", str(lab.playbook), check=False)
    lab.labctl("sandbox", "down", "-i", str(lab.inventory), check=False)


def run(h: Hosts, host: str, cmd: str) -> None:
    h.conn(host).run(cmd, hide=True)


def verify(lab: Lab, tmp_path, *extra: str) -> tuple[int, dict, ET.Element, str]:
    jf, xf = tmp_path / "v.json", tmp_path / "v.xml"
    res = lab.labctl("verify", "-i", str(lab.inventory), "-p", str(lab.playbook),
                     "--json", str(jf), "--junit", str(xf), *extra, check=False)
    assert res.returncode in (0, 1), res.stderr
    data = json.loads(jf.read_text())
    suite = ET.parse(xf).getroot().find("testsuite")
    assert suite is not None
    assert data["ok"] is (res.returncode == 0), "JSON agrees with the exit code"
    assert int(suite.get("failures", "-1")) == data["summary"]["failed"], "JUnit agrees with the JSON"
    assert int(suite.get("tests", "-1")) == data["summary"]["total"] == len(data["checks"])
    assert data["summary"]["passed"] + data["summary"]["failed"] == data["summary"]["total"]
    return res.returncode, data, suite, res.stdout


def verify_during(lab: Lab, tmp_path, hosts: Hosts, host: str, fault: str, repair: str) -> tuple[int, dict, str]:
    """verify while a fault is in place on one host; the fault is repaired whatever happens."""
    run(hosts, host, fault)
    try:
        code, data, _, out = verify(lab, tmp_path)
    finally:
        run(hosts, host, repair)
    return code, data, out


def failed(data: dict) -> list[dict]:
    return [c for c in data["checks"] if not c["ok"]]


def test_seed_lab_passes_with_both_kinds_of_expectation(lab: Lab, tmp_path) -> None:
    code, data, _, out = verify(lab, tmp_path)
    assert code == 0, failed(data)
    assert {c["expect"] for c in data["checks"]} == {"reach", "isolated"}
    keys = ("src", "src_host", "dst", "dst_host", "network", "address", "expect", "observed", "rtt_ms", "ok")
    assert all(set(keys) <= set(c) for c in data["checks"])
    cross = [c for c in data["checks"] if c["network"] == "ov" and c["src_host"] != c["dst_host"]
             and c["expect"] == "reach"]
    assert cross and all(c["observed"] == "reach" and c["rtt_ms"] is not None for c in cross)
    assert any(c["src"] == "c5" and c["expect"] == "isolated" for c in data["checks"])
    assert any(c["dst"] == "host:node1" and c["expect"] == "isolated" for c in data["checks"])
    assert "verify seed-overlay: OK" in out and "ov: does the row reach the column?" in out


def test_sample_keeps_one_pair_per_host_pair(lab: Lab, tmp_path) -> None:
    code, data, _, _ = verify(lab, tmp_path, "--sample")
    full = verify(lab, tmp_path)[1]
    assert code == 0 and 0 < len(data["checks"]) < len(full["checks"])
    assert {(c["src_host"], c["dst_host"], c["network"]) for c in data["checks"]} == \
        {(c["src_host"], c["dst_host"], c["network"]) for c in full["checks"]}


def test_udp_4789_dropped_on_one_host(lab: Lab, tmp_path, hosts: Hosts) -> None:
    rule = "INPUT -p udp --dport 4789 -j DROP"
    code, data, _ = verify_during(lab, tmp_path, hosts, "node2", f"iptables -I {rule}", f"iptables -D {rule}")
    assert code == 1
    bad = failed(data)
    cross_ov = [c for c in data["checks"] if c["network"] == "ov" and c["src_host"] != c["dst_host"]
                and c["expect"] == "reach"] + [c for c in data["checks"] if c["dst"] == "web2"]  # c3's alias
    assert sorted(map(str, bad)) == sorted(map(str, cross_ov)), "exactly the cross-host overlay checks fail"
    assert all("VXLAN (UDP 4789) is dropped on node2" in c["cause"] for c in bad if c["dst"] != "web2")
    assert data["probe"]["reprobed"] >= len(bad), "every mismatch was looked at again before it counted"
    assert any(c["network"] == "mv" and c["src_host"] != c["dst_host"] and c["ok"] for c in data["checks"])


def key(c: dict) -> tuple:
    return (c["src"], c["dst"], c["network"], c["via"], c["address"])


def test_fping_and_container_probes_give_the_same_verdicts(lab: Lab, tmp_path) -> None:
    code, fast, _, out = verify(lab, tmp_path)
    assert code == 0, failed(fast)
    assert fast["probe"]["modes"] == {"node1": "fping", "node2": "fping"} and fast["probe"]["reprobed"] == 0
    assert "probes: fping from the host on node1, node2" in out
    names = {c["dst"]: c["observed"] for c in fast["checks"] if c["reason"].startswith("playbook expect")}
    assert names == {"web2": "reach", "nosuch": "isolated"}, "names resolve as the container itself resolves them"
    code, slow, _, out = verify(lab, tmp_path, "--probe", "container")
    assert code == 0, failed(slow)
    assert slow["probe"]["modes"] == {"node1": "container", "node2": "container"}
    assert "pings inside the containers on node1, node2 (--probe container)" in out
    assert {key(c): c["observed"] for c in fast["checks"]} == {key(c): c["observed"] for c in slow["checks"]}
    assert len(fast["checks"]) == len(slow["checks"]) > 40


def test_host_without_fping_falls_back_to_pings_in_the_containers(lab: Lab, tmp_path, hosts: Hosts) -> None:
    # node2 has its own mount namespace: a broken fping there leaves the machine's and node1's alone
    run(hosts, "node2", "mount --bind /bin/false /usr/bin/fping")
    try:
        code, data, _, out = verify(lab, tmp_path)
        forced = lab.labctl("verify", "-i", str(lab.inventory), "-p", str(lab.playbook), "--probe", "fping",
                            check=False)
    finally:
        run(hosts, "node2", "umount /usr/bin/fping")
    assert code == 0, failed(data)
    assert data["probe"]["modes"] == {"node1": "fping", "node2": "container"}
    assert data["probe"]["notes"] == {"node2": "no fping on the host"}
    assert "pings inside the containers on node2 (no fping on the host)" in out
    assert forced.returncode == 2 and "node2: no fping on the host" in forced.stderr
    assert "labctl provision" in forced.stderr, "the error says how to get fping"


def test_verify_leaves_no_file_on_the_hosts(lab: Lab, tmp_path, hosts: Hosts) -> None:
    verify(lab, tmp_path)
    for host in ("node1", "node2"):
        listing = hosts.conn(host).run("ls -a /var/lib/labctl", hide=True).stdout
        assert "verify-" not in listing and "nsprobe" not in listing, listing


def test_stopped_container(lab: Lab, tmp_path, hosts: Hosts) -> None:
    code, data, _ = verify_during(lab, tmp_path, hosts, "node2", "docker stop c4", "docker start c4")
    assert code == 1
    bad = failed(data)
    involving = [c for c in data["checks"] if "c4" in (c["src"], c["dst"]) and c["expect"] == "reach"]
    assert bad and sorted(map(str, bad)) == sorted(map(str, involving))
    assert all("c4 is not running (state: exited)" in c["cause"] for c in bad)


def test_extra_network_breaks_an_isolation(lab: Lab, tmp_path, hosts: Hosts) -> None:
    code, data, out = verify_during(lab, tmp_path, hosts, "node1", "docker network connect iso c1",
                                    "docker network disconnect iso c1")
    assert code == 1
    bad = failed(data)
    assert all(c["expect"] == "isolated" and "c1" in (c["src"], c["dst"]) for c in bad)
    # c5 now resolves c1 by name too (one daemon, and now a shared user network): both directions are named
    assert {(c["src"], c["via"]) for c in bad if c["src"] == "c5"} == {("c5", "name")}
    to_c5 = [c for c in bad if c["dst"] == "c5"]
    assert to_c5 and "c1 and c5 share network iso that the playbook does not give them" in to_c5[0]["cause"]
    assert "MISMATCH" in out


def test_store_stopped_before_a_new_container_joins(lab: Lab, tmp_path, hosts: Hosts) -> None:
    pb = lab.playbook
    original = pb.read_text()
    pb.write_text(original.replace("containers:\n", "containers:\n  c6: {host: node2, networks: [ov]}\n", 1))
    run(hosts, "store", "start-stop-daemon --stop --pidfile /run/labctl/etcd.pid --retry 5")
    try:  # what a user does by hand while the store is down: Docker refuses the overlay
        hosts.conn("node2").run("docker run -d --name c6 --label labctl.lab=seed-overlay --network ov "
                                "labctl/busybox:latest sleep 600", hide=True, warn=True)
        code, data, _, _ = verify(lab, tmp_path)
    finally:
        pb.write_text(original)
        run(hosts, "node2", "docker rm -f c6")
        lab.labctl("up", "-i", str(lab.inventory), "-p", str(pb))
    assert code == 1
    bad = failed(data)
    assert bad and all("c6" in (c["src"], c["dst"]) for c in bad), "only the new container's checks fail"
    assert all("the cluster store does not answer" in c["cause"] for c in bad)
    assert any(c["network"] == "ov" and c["src_host"] != c["dst_host"] and c["ok"] for c in data["checks"]), \
        "containers that joined before keep reaching each other"


# ------------------------------------------------------------------ the picture and the HTML page

CHROMIUM = shutil.which("chromium")
MISMATCH_RED = (0xD3, 0x00, 0x1F)     # labctl/views/html.py: td.mismatch
REACH_GREEN = (0xD4, 0xF4, 0xD2)      # td.reach


def svg_texts(path) -> str:  # type: ignore[no-untyped-def]
    root = ET.parse(path).getroot()
    return " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed (make deps installs graphviz)")
def test_graph_draws_every_host_network_and_container_and_marks_a_missing_one(lab: Lab, tmp_path,
                                                                                 hosts: Hosts) -> None:
    svg = tmp_path / "lab.svg"
    lab.labctl("graph", "-i", str(lab.inventory), "-p", str(lab.playbook), "-o", str(svg))
    texts = svg_texts(svg)
    for name in ("store", "node1", "node2", "ov", "mv", "iso", "c1", "c2", "c3", "c4", "c5", "etcd", "VNI 256",
                 "control plane: kvstore"):
        assert name in texts, (name, texts)
    assert "(missing)" not in texts
    run(hosts, "node2", "docker rm -f c4")
    try:
        lab.labctl("graph", "-i", str(lab.inventory), "-p", str(lab.playbook), "-o", str(svg))
        texts = svg_texts(svg)
        mermaid = lab.labctl("graph", "-i", str(lab.inventory), "-p", str(lab.playbook), "-f", "mermaid").stdout
    finally:
        lab.labctl("up", "-i", str(lab.inventory), "-p", str(lab.playbook))
    assert re.search(r"c4 .*\(missing\)", texts), texts
    assert 'n_ctr_c4["c4' in mermaid and ":::missing" in mermaid


def headless(tmp_path, page, *args: str) -> None:  # type: ignore[no-untyped-def]
    assert CHROMIUM is not None
    profile = tmp_path / f"chromium-{len(list(tmp_path.iterdir()))}"
    res = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          "--hide-scrollbars", f"--user-data-dir={profile}", *args, page.as_uri()],
                         capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stderr[-2000:]


def what_a_person_sees(tmp_path, page):  # type: ignore[no-untyped-def]
    """The page as Chromium lays it out: its printed text (pdftotext) and the colours on screen."""
    from PIL import Image

    pdf, png = tmp_path / f"{page.stem}.pdf", tmp_path / f"{page.stem}.png"
    headless(tmp_path, page, f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    headless(tmp_path, page, f"--screenshot={png}", "--window-size=1400,2600")
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    colours = Image.open(png).convert("RGB").getcolors(maxcolors=1 << 20) or []
    return text, {c for _, c in colours}


@pytest.mark.skipif(CHROMIUM is None or shutil.which("pdftotext") is None or shutil.which("dot") is None,
                    reason="needs chromium, poppler-utils and graphviz (make deps installs them)")
def test_html_verdict_seen_in_headless_chromium(lab: Lab, tmp_path, hosts: Hosts) -> None:
    good = tmp_path / "good.html"
    lab.labctl("verify", "-i", str(lab.inventory), "-p", str(lab.playbook), "--html", str(good))
    text, colours = what_a_person_sees(tmp_path, good)
    assert "verify seed-overlay: OK" in text
    for name in ("c1", "c2", "c3", "c4", "c5", "node1", "node2", "VNI 256"):
        assert name in text, name
    assert "MISMATCH" not in text and MISMATCH_RED not in colours and REACH_GREEN in colours
    page = good.read_text()
    assert "http://" not in page.replace("http://www.w3.org/", "") and "https://" not in page, \
        "nothing fetched from the network"

    bad = tmp_path / "bad.html"
    rule = "INPUT -p udp --dport 4789 -j DROP"
    run(hosts, "node2", f"iptables -I {rule}")
    try:
        res = lab.labctl("verify", "-i", str(lab.inventory), "-p", str(lab.playbook), "--html", str(bad),
                         check=False)
    finally:
        run(hosts, "node2", f"iptables -D {rule}")
    assert res.returncode == 1
    text, colours = what_a_person_sees(tmp_path, bad)
    assert "verify seed-overlay: FAILED" in text and "MISMATCH" in text
    assert "likely cause: VXLAN (UDP 4789) is dropped on node2" in " ".join(text.split())
    assert "expected because: both on ov" in " ".join(text.split())
    assert MISMATCH_RED in colours, "mismatched cells are red on screen"


# ------------------------------------------------------------------ trace


def trace_json(lab: Lab, *args: str, code: int = 0) -> dict:
    res = lab.labctl("trace", "-i", str(lab.inventory), "-p", str(lab.playbook), "--json", *args, check=False)
    assert res.returncode == code, res.stdout + res.stderr
    return json.loads(res.stdout)


def nothing_left_of_trace(hosts: Hosts) -> None:
    for host in ("node1", "node2"):
        assert "trace." not in sh(hosts, host, "ls -a /var/lib/labctl").stdout
        assert "tcpdump" not in sh(hosts, host, "ps -eo comm").stdout, "every capture stopped"


def test_trace_over_the_overlay_proves_the_vxlan_encapsulation(lab: Lab, tmp_path, hosts: Hosts) -> None:
    status = json.loads(lab.labctl("status", "-i", str(lab.inventory), "-p", str(lab.playbook), "--json").stdout)
    vni = next(n["vni"] for n in status["networks"] if n["name"] == "ov")
    pcaps = tmp_path / "pcaps"
    data = trace_json(lab, "c1", "c3", "--pcap", str(pcaps))
    assert data["kind"] == "overlay" and data["vni"] == vni and data["received"] == data["sent"] == 3
    assert data["vteps"] == ["198.18.81.12", "198.18.81.13"]
    assert f"VXLAN on the wire: 198.18.81.12 -> 198.18.81.13, UDP 4789, VNI {vni}" in data["proof"]
    under = [c for c in data["captures"] if not c["in_container"]]
    assert [c["host"] for c in under] == ["node1", "node2"]
    assert all({"src": "198.18.81.12", "dst": "198.18.81.13", "port": 4789, "vni": vni} in c["vxlan"] for c in under)
    assert all(c["echo_requests"] >= 1 and c["echo_replies"] >= 1 for c in data["captures"])
    hops = [h["where"] for h in data["hops"]]
    assert hops[0] == "c1" and hops[-1] == "c3" and any("overlay namespace" in h for h in hops)
    assert sorted(p.name for p in pcaps.iterdir()) == ["c1-eth0.pcap", "c3-eth0.pcap", "node1-eth1.pcap",
                                                       "node2-eth1.pcap"]
    read = subprocess.run(["tcpdump", "-r", str(pcaps / "node2-eth1.pcap"), "-nn"], capture_output=True, text=True)
    assert read.returncode == 0 and f"vni {vni}" in read.stdout and "ICMP echo request" in read.stdout
    nothing_left_of_trace(hosts)


def test_trace_over_macvlan_shows_no_encapsulation(lab: Lab, hosts: Hosts) -> None:
    data = trace_json(lab, "c1", "c3", "--network", "mv", "--count", "2")
    assert data["kind"] == "macvlan" and data["vteps"] is None and data["received"] == 2
    assert all(c["vxlan"] == [] for c in data["captures"])
    assert any(p.startswith("no encapsulation") for p in data["proof"])
    assert sum(c["echo_requests"] for c in data["captures"] if not c["in_container"]) >= 2
    nothing_left_of_trace(hosts)


def test_trace_out_through_nat_and_bad_arguments(lab: Lab, hosts: Hosts) -> None:
    data = trace_json(lab, "c5", "198.18.81.13", "--count", "1")
    assert data["kind"] == "nat" and data["received"] == 1
    assert "NAT: on the underlay the echo request leaves from 198.18.81.12, not " + data["src_ip"] in data["proof"]
    assert any("MASQUERADE" in h["note"] for h in data["hops"])
    local = trace_json(lab, "c1", "c2", "--network", "ov", "--count", "1")
    assert "on one host: no VXLAN packet, as expected" in local["proof"]
    for args in (("c1", "nosuch"), ("c1", "c3", "--network", "iso"), ("c9", "c1")):
        res = lab.labctl("trace", "-i", str(lab.inventory), "-p", str(lab.playbook), *args, check=False)
        assert res.returncode == 2 and "error: trace:" in res.stderr, res.stderr
    nothing_left_of_trace(hosts)


# ------------------------------------------------------------------ break-and-fix scenarios

def cross_ov(c: dict) -> bool:
    return (c["network"] == "ov" and c["src_host"] != c["dst_host"] and c["expect"] == "reach") or c["dst"] == "web2"


def with_c4(c: dict) -> bool:
    return "c4" in (c["src"], c["dst"]) and c["expect"] == "reach"


# scenario -> (extra arguments, the checks that must fail, the cause they must give (for checks to a host))
SCENARIOS = {
    "vxlan-blocked": ((), cross_ov, "VXLAN (UDP 4789) is dropped on node2 by its firewall"),
    "store-stopped": ((), with_c4, "c4 is not running (state: exited): the cluster store does not answer"),
    "mtu-lowered": ((), lambda c: c["via"] == "size", "underlay MTU 1400 on node2 is below the 1500 bytes"),
    "container-stopped": (("--container", "c4"), with_c4, "c4 is not running (state: exited)"),
    # c3 still finds c4 by name: they share mv on node2, and Docker's DNS answers for every network they share
    "container-disconnected": (("--container", "c4", "--network", "ov"), lambda c: with_c4(c) and c["network"] == "ov"
                               and not (c["via"] == "name" and c["src_host"] == c["dst_host"]),
                               "c4 is not attached to ov"),
    "wrong-subnet": ((), cross_ov, "node1 routes node2's underlay address through br-"),
}


def nothing_left_of_breaks(lab: Lab, hosts: Hosts) -> None:
    for host in ("store", "node1", "node2"):
        assert sh(hosts, host, "test -e /var/lib/labctl/breaks/seed-overlay.json").failed, f"{host}: record left"
    for host in ("node1", "node2"):
        assert "--dport 4789" not in sh(hosts, host, "iptables-save").stdout
        assert sh(hosts, host, "cat /sys/class/net/eth1/mtu").stdout.strip() == "1500"
        assert "in-the-way" not in sh(hosts, host, "docker network ls --format '{{.Name}}'").stdout
    status = json.loads(lab.labctl("status", "-i", str(lab.inventory), "-p", str(lab.playbook), "--json").stdout)
    assert status["missing"] == [] and status["extra"] == []


def test_list_scenarios_names_each_one(lab: Lab) -> None:
    out = lab.labctl("list-scenarios").stdout
    assert all(name in out for name in SCENARIOS)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_break_fails_exactly_the_expected_checks_and_undo_restores_the_lab(lab: Lab, tmp_path, hosts: Hosts,
                                                                           scenario: str) -> None:
    extra, expected, cause = SCENARIOS[scenario]
    base = ("-i", str(lab.inventory), "-p", str(lab.playbook))
    res = lab.labctl("break", *base, scenario, *extra)
    try:
        assert "broke seed-overlay" in res.stdout and scenario in res.stdout
        again = lab.labctl("break", *base, "container-stopped", check=False)
        assert again.returncode == 2 and "already has a fault injected" in again.stderr
        code, data, _, _ = verify(lab, tmp_path)
    finally:
        undo = lab.labctl("break", "--undo", *base, check=False)
    assert undo.returncode == 0 and "reverted" in undo.stdout, undo.stderr
    assert code == 1
    bad = failed(data)
    want = [c for c in data["checks"] if expected(c)]
    assert want and sorted(map(str, bad)) == sorted(map(str, want)), f"{scenario}: exactly these checks fail"
    with_host = [c for c in bad if c["dst_host"] and c["dst"] != "web2"]
    assert with_host and all(cause in c["cause"] for c in with_host), [c["cause"] for c in with_host][:3]
    code, data, _, _ = verify(lab, tmp_path)
    assert code == 0, failed(data)
    nothing_left_of_breaks(lab, hosts)


def test_a_break_killed_after_its_record_is_undone_and_down_undoes_a_break(lab: Lab, tmp_path, hosts: Hosts) -> None:
    from labctl.plan import breaks
    base = ("-i", str(lab.inventory), "-p", str(lab.playbook))
    # killed right after the record was written on node1, before the network was created: undo still works
    inj = breaks.Injection("wrong-subnet", "seed-overlay", "by hand", (breaks.Action(
        "node1", ("true",), ("docker network rm in-the-way 2>/dev/null || true",)),))
    run(hosts, "node1", breaks.write_record("seed-overlay", inj.record(0)))
    assert "undid wrong-subnet" in lab.labctl("break", "--undo", *base).stdout
    assert sh(hosts, "node1", "test -e /var/lib/labctl/breaks/seed-overlay.json").failed
    # `down` reverts an injected fault too (an iptables rule that removing containers would not touch)
    lab.labctl("break", *base, "vxlan-blocked")
    try:
        out = lab.labctl("down", *base).stdout
        assert "undid vxlan-blocked" in out
        assert "--dport 4789" not in sh(hosts, "node2", "iptables-save").stdout
    finally:
        lab.labctl("up", *base)
    assert verify(lab, tmp_path)[0] == 0


def test_a_break_docker_refuses_is_taken_back(lab: Lab, tmp_path, hosts: Hosts) -> None:
    """A network named in-the-way made by hand: Docker refuses labctl's, the record is taken back, the hand-made
    network stays (it has no labctl label), and the lab still passes."""
    base = ("-i", str(lab.inventory), "-p", str(lab.playbook))
    run(hosts, "node1", "docker network create --subnet 10.99.0.0/24 in-the-way")
    try:
        res = lab.labctl("break", *base, "wrong-subnet", check=False)
        assert res.returncode == 1 and "in-the-way" in res.stderr
        assert sh(hosts, "node1", "test -e /var/lib/labctl/breaks/seed-overlay.json").failed
        assert "10.99.0.0/24" in sh(hosts, "node1", "docker network inspect in-the-way").stdout
        assert verify(lab, tmp_path)[0] == 0
    finally:
        run(hosts, "node1", "docker network rm in-the-way")
