"""labctl trace's pure part on output captured from real sandbox hosts (seed lab, Docker 20.10.24, tcpdump 4.99):
the facts script's output parsed into links, the path of c1 -> c3 over the overlay, and what the captures prove."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.executors import trace as trace_exec
from labctl.plan import trace

DATA = Path(__file__).parent / "data"


def facts(host: str) -> trace.HostFacts:
    text = "".join(line for line in (DATA / f"trace-facts-{host}.txt").read_text().splitlines(keepends=True)
                   if not line.startswith("#"))
    return trace.parse_facts(host, text, {"node1": ["c1"], "node2": ["c3"]}[host], "ov", "eth1")


def dumps() -> dict[str, str]:
    found: dict[str, list[str]] = {}
    current = ""
    for line in (DATA / "trace-tcpdump-4.99.txt").read_text().splitlines():
        if line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            found[current] = []
        else:
            found[current].append(line)
    return {k: "\n".join(v) + "\n" for k, v in found.items()}


NODE1, NODE2 = facts("node1"), facts("node2")


def test_links_of_a_container_the_host_and_the_overlay_namespace() -> None:
    c1 = NODE1.containers["c1"]
    assert c1.pid > 0 and c1.route.startswith("172.30.0.1 dev eth0 src 172.30.0.2")
    eth0 = c1.by_address("172.30.0.2")
    assert eth0 is not None and eth0.name == "eth0" and eth0.kind == "veth" and eth0.mtu == 1450
    mv = c1.by_address("172.29.0.11")
    assert mv is not None and mv.kind == "macvlan" and mv.peer_index == NODE1.links["eth1"].index
    assert NODE1.underlay is not None and NODE1.underlay.addresses == ("198.18.0.12/24",)
    assert NODE1.overlay_ns.startswith("/run/docker/netns/1-")
    vx = NODE1.overlay_links["vxlan0"]
    assert (vx.kind, vx.vni, vx.dstport, vx.master) == ("vxlan", 256, 4789, "br0")
    assert NODE1.overlay_links["br0"].kind == "bridge"
    assert NODE1.links["docker0"].kind == "bridge"
    assert any(r.endswith("! -o docker0 -j MASQUERADE") for r in NODE1.nat)
    assert NODE1.tools == [], "tcpdump is there"
    c3 = NODE2.containers["c3"].by_address("172.30.0.1")
    assert c3 is not None and NODE1.overlay_fdb[c3.mac] == "198.18.0.13", "the FDB names c3's VTEP"


def test_overlay_path_names_every_hop_and_captures_both_ends_and_both_underlays() -> None:
    path = trace.build_path("overlay", "ov", 256, "c1", NODE1, "172.30.0.2", "c3", NODE2, "172.30.0.1")
    wheres = [h.where for h in path.hops]
    assert wheres[0] == "c1" and wheres[-1] == "c3"
    assert wheres[1].startswith("node1 overlay namespace 1-") and wheres[4].startswith("node2 overlay namespace 1-")
    assert [h.ip for h in path.hops if h.where in ("node1", "node2")] == ["198.18.0.12", "198.18.0.13"]
    assert "VNI 256" in path.hops[1].what and "VTEP 198.18.0.13" in path.hops[1].note
    assert "veth0 sits on br0" in path.hops[0].note
    assert [(c.name, c.host, bool(c.pid)) for c in path.captures] == [
        ("c1-eth0", "node1", True), ("node1-eth1", "node1", False), ("node2-eth1", "node2", False),
        ("c3-eth0", "node2", True)]
    assert path.captures[1].bpf == "udp port 4789 and host 198.18.0.13"
    assert path.vteps == ("198.18.0.12", "198.18.0.13")


def test_macvlan_path_has_no_encapsulation_point() -> None:
    path = trace.build_path("macvlan", "mv", None, "c1", NODE1, "172.29.0.11", "c3", NODE2, "172.29.0.13")
    assert path.vteps is None
    assert all("4789" not in c.bpf for c in path.captures)
    assert any("no encapsulation" in h.note for h in path.hops)


def test_tcpdump_output_decoded_with_outer_and_inner_headers() -> None:
    text = dumps()
    outer = trace.parse_tcpdump(text["vxlan-underlay"])
    assert outer and all(p.outer is not None for p in outer)
    assert {p.outer for p in outer} == {("198.18.0.12", "198.18.0.13", 4789, 256),
                                        ("198.18.0.13", "198.18.0.12", 4789, 256)}
    assert {(p.src, p.dst, p.icmp) for p in outer} == {("172.30.0.2", "172.30.0.1", "echo request"),
                                                       ("172.30.0.1", "172.30.0.2", "echo reply")}
    assert outer[0].src_mac == "02:42:ac:1e:00:02", "the inner frame's MAC, not the underlay's"
    plain = trace.parse_tcpdump(text["macvlan-underlay"])
    assert plain and all(p.outer is None for p in plain)
    assert trace.parse_tcpdump(text["container"])[0].outer is None


def test_proof_from_the_captures() -> None:
    text = dumps()
    path = trace.build_path("overlay", "ov", 256, "c1", NODE1, "172.30.0.2", "c3", NODE2, "172.30.0.1")
    packets = {"node1-eth1": trace.parse_tcpdump(text["vxlan-underlay"]),
               "c3-eth0": trace.parse_tcpdump(text["container"])}
    seen = [trace.seen_at(p, packets.get(p.name, []), path) for p in path.captures]
    lines = trace.proof(path, seen)
    assert "VXLAN on the wire: 198.18.0.12 -> 198.18.0.13, UDP 4789, VNI 256" in lines
    assert "no echo request seen at: c1-eth0, node2-eth1" in lines, "what was not captured is said"
    assert seen[1].requests == seen[1].replies == 2
    mv = trace.build_path("macvlan", "mv", None, "c1", NODE1, "172.29.0.11", "c3", NODE2, "172.29.0.13")
    mv_seen = [trace.seen_at(p, trace.parse_tcpdump(text["macvlan-underlay"]), mv) for p in mv.captures]
    assert any(line.startswith("no encapsulation") for line in trace.proof(mv, mv_seen))


def test_an_unanswered_arp_for_the_gateway_is_named() -> None:
    text = dumps()["arp-underlay"]
    asked, answered = trace.parse_arp(text)
    assert asked == [("172.29.0.254", "172.29.0.11")] * 2 and answered == set()
    route = "198.18.0.13 via 172.29.0.254 dev eth2 src 172.29.0.11 uid 0"
    node1 = facts("node1")
    node1.containers["c1"].route = route
    path = trace.build_path("nat", "mv", None, "c1", node1, "172.29.0.11", "198.18.0.13", NODE2, "198.18.0.13")
    assert path.kind == "routed", "the route leaves through macvlan: no host bridge, no NAT"
    seen = [trace.seen_at(p, trace.parse_tcpdump(text), path, (asked, answered)) for p in path.captures]
    assert ("ARP at node1-eth1: 172.29.0.11 asked 2 time(s) who has 172.29.0.254, and no one answered: that next "
            "hop does not exist (or cannot hear it), so no echo could be sent") in trace.proof(path, seen)
    assert trace.parse_arp(text.replace("Request who-has 172.29.0.254 tell 172.29.0.11",
                                        "Reply 172.29.0.254 is-at 02:00:00:00:00:01"))[1] == {"172.29.0.254"}


def test_facts_script_refuses_what_is_not_a_plain_name() -> None:
    with pytest.raises(ValueError):
        trace.trace_facts(["c1; reboot"], "ov", "172.30.0.1")
    with pytest.raises(ValueError):
        trace.trace_facts(["c1"], "ov", "$(id)")
    with pytest.raises(ValueError):
        trace.trace_facts(["c1"], "ov net", "172.30.0.1")


def test_capture_and_stop_scripts_are_bounded_and_stop_their_own_pids() -> None:
    point = trace.CapturePoint("c1-eth0", "node1", 635, "eth0", "icmp and host 172.30.0.2 and host 172.30.0.1")
    start = trace_exec.capture_script([point])
    assert "timeout 20 tcpdump -i eth0" in start and "-c 100" in start and "nsenter -t 635 -n" in start
    assert "'icmp and host 172.30.0.2 and host 172.30.0.1'" in start
    assert 'echo $! > "$d/c1-eth0.pid"' in start
    stop = trace_exec.stop_script("/var/lib/labctl/trace.abc", [point])
    assert 'kill -INT "$p"' in stop and "pkill" not in stop and "killall" not in stop
    assert trace_exec.ping_counts("3 packets transmitted, 2 packets received, 33% packet loss") == (3, 2)
    assert trace_exec.split_decoded(f"{trace_exec.MARK} a\nx\n{trace_exec.MARK} b\n") == {"a": "x\n", "b": ""}
