"""The engine-version decision: which overlay control plane a lab takes on which engines (pure)."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from pathlib import Path

import pytest

from labctl.errors import ValidationError
from labctl.model.inventory import load_inventory
from labctl.model.playbook import load_playbook, parse_playbook
from labctl.plan.controlplane import Engine, decide, effective, engine_version, kvstore_refusal
from labctl.planes.swarm import plan as swarm
from labctl.planes.swarm.plan import SwarmFacts, swarm_refusal
from labctl.planes.vxlan import plan as vxlan


@pytest.mark.parametrize(("text", "parsed"), [
    ("20.10.24+dfsg1", (20, 10)),          # Debian 12's docker.io (what runs here)
    ("20.10.24", (20, 10)),                # upstream static binaries
    ("28.2.2", (28, 2)),
    ("23.0.0", (23, 0)),
    ("24.0.7-0ubuntu4", (24, 0)),
    ("26.1.5+dfsg1", (26, 1)),
    ("17.06.2-ce", (17, 6)),
    ("1.13.1", (1, 13)),                   # RHEL 7's docker
    ("19.03", (19, 3)),
    ("", None),
    ("garbage", None),
    ("v20.10.24", None),
    ("20", None),
    ("20.x", None),
])
def test_engine_versions_as_docker_prints_them(text: str, parsed: tuple[int, int] | None) -> None:
    assert engine_version(text) == parsed


@pytest.mark.parametrize(("version", "backend", "consul", "refused"), [
    ("20.10.24+dfsg1", "etcd", False, None),
    ("20.10.24+dfsg1", "consul", False, "without the Consul backend"),
    ("20.10.24", "consul", True, None),
    ("22.06.0-beta.0", "etcd", False, None),
    ("23.0.0", "etcd", True, "no cluster store (removed in 23.0)"),
    ("28.2.2", "etcd", False, "no cluster store (removed in 23.0)"),
    ("", "etcd", False, "no Docker engine answers"),
    ("weird", "etcd", False, "not understood"),
])
def test_cluster_store_needs_engine_22_or_older_with_the_backend(version: str, backend: str, consul: bool,
                                                                refused: str | None) -> None:
    why = kvstore_refusal(version, backend, consul)
    assert why == refused if refused is None else (why is not None and refused in why)


@pytest.mark.parametrize(("version", "ok"), [("17.06.0-ce", True), ("17.05.0-ce", False), ("1.13.1", False),
                                             ("20.10.24+dfsg1", True), ("28.2.2", True), ("", False)])
def test_swarm_needs_attachable_overlays(version: str, ok: bool) -> None:
    assert (swarm_refusal(version) is None) is ok


OLD = [Engine("node1", "20.10.24+dfsg1"), Engine("node2", "20.10.24+dfsg1")]
MIXED = [Engine("node1", "20.10.24+dfsg1"), Engine("node2", "28.2.2")]
NEW = [Engine("node1", "27.3.1"), Engine("node2", "28.2.2")]


def test_auto_takes_the_store_when_every_engine_can_use_it() -> None:
    d = decide("auto", "etcd", OLD)
    assert (d.control, d.problems) == ("kvstore", [])
    assert "etcd store and every docker host's engine can use it" in d.why


def test_auto_takes_swarm_and_names_the_host_that_cannot_use_the_store() -> None:
    d = decide("auto", "etcd", MIXED)
    assert (d.control, d.problems) == ("swarm", [])
    assert d.why == "auto: node2: Docker Engine 28.2.2 has no cluster store (removed in 23.0)"


def test_auto_without_a_store_is_swarm() -> None:
    assert decide("auto", None, OLD).control == "swarm"
    assert decide("auto", None, OLD).why == "auto: the playbook declares no store"


def test_auto_with_consul_on_debians_engine_is_swarm() -> None:
    d = decide("auto", "consul", OLD)
    assert d.control == "swarm" and "without the Consul backend" in d.why


def test_kvstore_requested_on_new_engines_is_refused_with_the_alternative() -> None:
    d = decide("kvstore", "etcd", NEW)
    assert d.control == "kvstore" and len(d.problems) == 2
    assert d.problems[0].startswith("[node1] overlay.control kvstore: Docker Engine 27.3.1 has no cluster store")
    assert "use `overlay: {control: swarm}`" in d.problems[0]


def test_swarm_requested_on_an_engine_without_attachable_overlays_is_refused() -> None:
    d = decide("swarm", None, [Engine("node1", "1.13.1"), Engine("node2", "28.2.2")])
    assert d.control == "swarm" and len(d.problems) == 1 and d.problems[0].startswith("[node1] ")
    assert decide("swarm", None, NEW).problems == []


# ---------------------------------------------------------------- swarm: facts captured on Docker 20.10.24 here

DATA = Path(__file__).parent / "data"
INV = load_inventory(str(Path(__file__).resolve().parents[2] / "inventories" / "sandbox.yaml"))
SWARM_PB = load_playbook(str(Path(__file__).resolve().parents[2] / "playbooks" / "seed-overlay-swarm.yaml"), INV)


def captured(kind: str, host: str) -> SwarmFacts:
    return swarm.parse_facts(host, (DATA / f"swarm-facts-{kind}-20.10.24.txt").read_text())


def test_swarm_facts_of_a_manager_a_worker_and_a_host_outside() -> None:
    mgr, wrk, out = captured("manager", "node1"), captured("worker-blocked", "node2"), captured("inactive", "node1")
    assert (mgr.state, mgr.manager, mgr.address, mgr.marker_lab, mgr.marker_role) == \
        ("active", True, "198.18.0.12", "seed-overlay-swarm", "manager")
    assert (wrk.state, wrk.manager, wrk.address, wrk.managers, wrk.marker_role) == \
        ("active", False, "198.18.0.13", ("198.18.0.12:2377",), "worker")
    assert (out.state, out.ours, out.blocked) == ("inactive", False, ())
    assert len(wrk.blocked) == 2


def test_blocked_ports_are_read_from_iptables_rules() -> None:
    wrk = captured("worker-blocked", "node2")
    assert [swarm.blocked_ports(r) for r in wrk.blocked] == [
        ["4789/udp (VXLAN data)"], ["2377/tcp (cluster management)", "7946/tcp+udp (node gossip)"]]
    assert swarm.blocked_ports("-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP") == []
    assert swarm.blocked_ports("-A INPUT -p tcp --dport 24789 -j DROP") == []


def test_swarm_refusals() -> None:
    mgr, wrk = captured("manager", "node1"), captured("worker-blocked", "node2")
    assert [p for p in swarm.problems(SWARM_PB, {"node1": mgr}, "node1")] == []
    other = replace(SWARM_PB, name="another-lab")
    foreign = swarm.problems(other, {"node1": mgr}, "node1")
    assert foreign and "[node1] is already in a swarm made by lab 'seed-overlay-swarm'" in foreign[0]
    stranger = swarm.problems(SWARM_PB, {"node1": replace(mgr, marker_lab="", marker_role="")}, "node1")
    assert "made by someone else (labctl did not make it)" in stranger[0]
    assert "labctl never joins or leaves a swarm it did not make" in stranger[0]
    dropped = swarm.problems(SWARM_PB, {"node2": wrk}, "node1")
    assert len(dropped) == 2 and dropped[0].startswith("[node2] iptables drops swarm traffic (4789/udp (VXLAN data))")
    moved = swarm.problems(SWARM_PB, {"node1": mgr}, "node2")
    assert "must be its only manager" in moved[0], "the inventory's first docker host changed since the swarm was made"


def test_a_subnet_on_swarms_ingress_network_is_refused() -> None:
    net = replace(SWARM_PB.network("ov"), subnet=ipaddress.ip_network("10.0.0.0/16"))
    pb = replace(SWARM_PB, networks=(net,))
    assert any("overlaps swarm's ingress network 10.0.0.0/24" in p for p in swarm.problems(pb, {}, "node1"))


def test_swarm_commands_take_only_addresses_and_a_well_formed_token() -> None:
    token = "SWMTKN-1-4p0blp46m8p0bj4jzbzcyktn65b4kxi3vs7eunl2xlawse7cnp-09pj5te0ntve2j9susfdf6wx5"
    assert swarm.join_command("198.18.0.13", token, "198.18.0.12") == (
        "docker swarm join --advertise-addr 198.18.0.13 --listen-addr 198.18.0.13:2377 --data-path-addr 198.18.0.13 "
        f"--token {token} 198.18.0.12:2377")
    with pytest.raises(ValueError):
        swarm.join_command("198.18.0.13", token + "; reboot", "198.18.0.12")
    with pytest.raises(ValueError):
        swarm.init_command("198.18.0.12; reboot")
    assert "'{\"lab\": \"x\", \"role\": \"manager\"}'" in swarm.record("x", "manager")


def test_effective_playbook_under_swarm_has_no_store_and_attachable_overlays() -> None:
    seed = load_playbook(str(Path(__file__).resolve().parents[2] / "playbooks" / "seed-overlay.yaml"), INV)
    eff = effective(seed, "swarm")
    assert eff.store is None and eff.control == "swarm"
    assert eff.network("ov").attachable and not eff.network("mv").attachable
    assert effective(seed, "kvstore").store == seed.store


# ---------------------------------------------------------------- vxlan: labctl's own devices (captured here)

VXLAN_PB = load_playbook(str(Path(__file__).resolve().parents[2] / "playbooks" / "seed-overlay-vxlan.yaml"), INV)
ADDRS = {"node1": "198.18.0.12", "node2": "198.18.0.13"}


def vx_captured(kind: str) -> dict[str, vxlan.Device]:
    return vxlan.parse_facts((DATA / f"vxlan-facts-{kind}-debian12.txt").read_text())


def test_vxlan_playbook_gets_its_vni_and_disjoint_ranges() -> None:
    ov = VXLAN_PB.network("ov")
    assert ov.vni == 4200 and VXLAN_PB.control == "vxlan" and VXLAN_PB.store is None
    assert dict(ov.host_ranges) == {"node1": "172.30.128.0/18", "node2": "172.30.192.0/18"}, \
        "each host's Docker allocates from its own part: no address collides across hosts"
    eff = effective(VXLAN_PB, "vxlan").network("ov")
    assert (eff.driver, eff.parent, eff.vni) == ("macvlan", "vxl4200", 4200)
    assert not any(k.endswith("vxlanid_list") for k, _ in eff.options)


def test_vni_is_derived_stably_when_the_playbook_names_none() -> None:
    text = (Path(__file__).resolve().parents[2] / "playbooks" / "seed-overlay-vxlan.yaml").read_text()
    text = text.replace('      com.docker.network.driver.overlay.vxlanid_list: "4200"', "      {}").replace(
        "    options:\n      {}\n", "")
    # Pinned: the VNI is on the wire and in other hosts' FDBs, so it must be the same in every process and release
    # (CRC-32 of "lab/network"; Python's salted hash() would give another value in each process).
    assert parse_playbook(text, "p.yaml", INV).network("ov").vni == 3804909
    renamed = text.replace("name: seed-overlay-vxlan", "name: other-lab")
    assert parse_playbook(renamed, "p.yaml", INV).network("ov").vni != 3804909, "another lab, another VNI"


@pytest.mark.parametrize(("value", "message"), [
    ('"12"', "with control vxlan give one VXLAN ID from 4096 to 16777215"),
    ('"4200,4201"', "with control vxlan give one VXLAN ID"),
])
def test_a_bad_vni_for_the_vxlan_plane_is_refused(value: str, message: str) -> None:
    text = (Path(__file__).resolve().parents[2] / "playbooks" / "seed-overlay-vxlan.yaml").read_text()
    with pytest.raises(ValidationError) as err:
        parse_playbook(text.replace('"4200"', value), "p.yaml", INV)
    assert message in err.value.render()


def test_vxlan_facts_of_a_working_and_a_broken_host() -> None:
    up = vx_captured("up")["vxl4200"]
    assert (up.vni, up.local, up.dev, up.dstport, up.up, up.peers) == (4200, "198.18.0.12", "eth1", 4789, True,
                                                                       ("198.18.0.13",))
    assert up.lab() == "seed-overlay-vxlan"
    broken = vx_captured("broken")
    assert (broken["vxl4200"].up, broken["vxl4200"].peers) == (False, ())
    assert broken["vxl4300"].lab() is None and broken["vxl4300"].alias == ""


def test_vxlan_plan_creates_repairs_and_changes_nothing_when_all_is_well() -> None:
    want = vxlan.wanted(effective(VXLAN_PB, "vxlan"), "node1", ADDRS, "eth1")
    assert [(w.name, w.local, w.peers) for w in want] == [("vxl4200", "198.18.0.12", ("198.18.0.13",))]
    fresh = vxlan.plan_devices(VXLAN_PB, "node1", {}, want)
    assert fresh[0].command == (
        "ip link add vxl4200 type vxlan id 4200 dstport 4789 local 198.18.0.12 dev eth1 && "
        "ip link set vxl4200 alias labctl:seed-overlay-vxlan:ov && "
        "bridge fdb append 00:00:00:00:00:00 dev vxl4200 dst 198.18.0.13 && ip link set vxl4200 up")
    assert [s.command for s in vxlan.plan_devices(VXLAN_PB, "node1", vx_captured("up"), want)] == [None]
    repair = vxlan.plan_devices(VXLAN_PB, "node1", vx_captured("broken"), want)
    assert repair[0].command == ("bridge fdb append 00:00:00:00:00:00 dev vxl4200 dst 198.18.0.13 && "
                                 "ip link set vxl4200 up")
    assert len(repair) == 1, "vxl4300 is not labctl's: left alone"
    assert vxlan.faults(want, vx_captured("broken"), {"198.18.0.13": "node2"}) == [
        "VXLAN device vxl4200 of ov is down",
        "vxl4200 has no FDB entry for node2 (198.18.0.13): frames to that host are never sent"]


def test_vxlan_devices_of_the_lab_go_when_nothing_wants_them() -> None:
    swarm_pb = effective(VXLAN_PB, "swarm")  # the same lab switched to swarm
    steps = vxlan.plan_devices(swarm_pb, "node1", vx_captured("up"), [])
    assert [s.command for s in steps] == ["ip link del vxl4200"]
    assert vxlan.teardown("seed-overlay-vxlan", vx_captured("up")) == ["ip link del vxl4200"]
    assert vxlan.teardown("another-lab", vx_captured("up")) == []


def test_a_vxlan_device_that_is_not_labctls_is_refused_and_a_half_made_one_adopted() -> None:
    want = vxlan.wanted(effective(VXLAN_PB, "vxlan"), "node1", ADDRS, "eth1")
    foreign = {"vxl4200": replace(vx_captured("up")["vxl4200"], alias="", vni=99)}
    assert "a VXLAN device vxl4200 exists there and is not labctl's" in vxlan.problems(VXLAN_PB, "node1", foreign,
                                                                                        want)[0]
    half = {"vxl4200": replace(vx_captured("up")["vxl4200"], alias="", peers=())}  # killed before the alias
    assert vxlan.problems(VXLAN_PB, "node1", half, want) == []
    fix = vxlan.plan_devices(VXLAN_PB, "node1", half, want)[0].command
    assert fix is not None and fix.startswith("ip link set vxl4200 alias labctl:seed-overlay-vxlan:ov")
    other = {"vxl4200": replace(vx_captured("up")["vxl4200"], alias="labctl:lab2:ov")}
    assert "belongs to lab 'lab2'" in vxlan.problems(VXLAN_PB, "node1", other, want)[0]


def test_decision_for_vxlan_is_taken_as_asked_on_any_engine() -> None:
    d = decide("vxlan", None, NEW + [Engine("node3", "1.13.1")])
    assert (d.control, d.problems) == ("vxlan", [])
