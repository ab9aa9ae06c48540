"""Facts and status parsed from output captured on a real sandbox host (Docker 20.10.24, seed lab up, plus a
network `handmade` and a container `byhand` made by hand), and the refusals preflight draws from them."""

from __future__ import annotations

import dataclasses
import os
import textwrap
from pathlib import Path

from labctl.executors.hostfacts import parse_facts
from labctl.executors.labimages import missing_images
from labctl.model.inventory import parse_inventory
from labctl.model.playbook import parse_playbook
from labctl.plan import daemon
from labctl.plan.preflight import preflight_problems
from labctl.plan.status import HostState, LabStatus, parse_host_state, summarize
from labctl.planes.registry import plan_halves

DATA = os.path.join(os.path.dirname(__file__), "data")
ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
INV = parse_inventory(Path(ROOT, "inventories", "sandbox.yaml").read_text(), "inventories/sandbox.yaml")
SEED = parse_playbook(Path(ROOT, "playbooks", "seed-overlay.yaml").read_text(), "seed.yaml", INV)


def captured(name: str) -> str:
    return Path(DATA, name).read_text(encoding="utf-8")


FACTS = parse_facts(captured("facts-node1.txt"), "node1", "seed-overlay")


def test_facts_from_real_output() -> None:
    assert FACTS.engine_version == "20.10.24+dfsg1"
    assert FACTS.hostname == "node1" and FACTS.consul_backend is False
    assert "eth1" in FACTS.interfaces and FACTS.daemon_json_error == ""
    assert FACTS.foreign_networks["handmade"] == ("10.99.0.0/24",)
    assert "ov" not in FACTS.foreign_networks and "mv" not in FACTS.foreign_networks  # the lab's own
    assert FACTS.foreign_containers == ("byhand",)
    assert FACTS.images == frozenset({"labctl/busybox:latest"})
    assert FACTS.daemon_owner == "seed-overlay" and FACTS.has_backup
    assert FACTS.daemon_json["cluster-store"] == "etcd://198.18.0.11:2379"


def test_same_facts_seen_by_another_lab() -> None:
    other = parse_facts(captured("facts-node1.txt"), "node1", "otherlab")
    assert {"ov", "mv", "handmade"} <= set(other.foreign_networks)
    assert set(other.foreign_containers) == {"byhand", "c1", "c2"}


def test_seed_lab_passes_preflight_on_its_own_host() -> None:
    facts = {"node1": FACTS, "node2": dataclasses.replace(FACTS, name="node2", hostname="node2", engine_id="X")}
    assert preflight_problems(SEED, facts) == []


def playbook(text: str):
    return parse_playbook(textwrap.dedent(text), "p.yaml", INV)


def test_names_and_subnets_in_use_are_refused_with_the_entry() -> None:
    pb = playbook("""
        name: seed-overlay
        networks:
          handmade: {driver: bridge, subnet: 10.98.0.0/24, hosts: [node1]}
          b2: {driver: bridge, subnet: 10.99.0.128/25, hosts: [node1]}
        containers:
          byhand: {host: node1}
        """)
    problems = preflight_problems(pb, {"node1": FACTS})
    assert any(p.startswith("[node1] networks.handmade: a network named 'handmade' already exists") for p in problems)
    assert any(p.startswith("[node1] networks.b2: subnet 10.99.0.128/25 overlaps network 'handmade'")
               for p in problems)
    assert any(p.startswith("[node1] containers.byhand: a container named 'byhand' already exists")
               for p in problems)


def test_host_owned_by_another_lab_is_refused() -> None:
    pb = playbook("name: otherlab\nnetworks:\n  b: {driver: bridge, subnet: 10.97.0.0/24, hosts: [node1]}\n")
    problems = preflight_problems(pb, {"node1": parse_facts(captured("facts-node1.txt"), "node1", "otherlab")})
    assert any("in use by lab 'seed-overlay'" in p for p in problems)


def test_malformed_daemon_json_is_refused_before_any_change() -> None:
    broken = captured("facts-node1.txt").replace('"bip": "172.17.12.1/24",', '"bip": "172.17.12.1/24",,', 1)
    facts = parse_facts(broken, "node1", "seed-overlay")
    assert facts.daemon_json_error.startswith("is not valid JSON")
    problems = preflight_problems(SEED, {"node1": facts})
    assert any(p.startswith("[node1] /etc/docker/daemon.json is not valid JSON") for p in problems)


def test_missing_images_named_with_first_container() -> None:
    pb = playbook("""
        containers:
          ca: {host: node1, image: nginx}
          cb: {host: node1, image: 'nginx:latest'}
          cc: {host: node1}
        """)
    assert missing_images(pb, {"node1": FACTS}) == {"node1": {"nginx:latest": "ca"}}


def test_restore_gives_docker0_its_address_back_first() -> None:
    backup = daemon.backup_of({"debug": True}, "172.17.0.1/16", "lab1")
    current = {"debug": True, "bip": "172.17.12.1/24", "cluster-store": "etcd://x:2379"}
    assert daemon.restore_sequence(current, backup, "172.17.12.1/24") == [
        {"debug": True, "bip": "172.17.0.1/16"}, {"debug": True}]
    assert daemon.restore_sequence(current, backup, "172.17.0.1/16") == [{"debug": True}]
    assert daemon.restore_sequence({"debug": True}, backup, "172.17.0.1/16") == []


def test_restore_keeps_an_original_bip() -> None:
    backup = daemon.backup_of({"bip": "10.5.0.1/24"}, "10.5.0.1/24", "lab1")
    assert daemon.restore_sequence({"bip": "172.17.12.1/24"}, backup, "172.17.12.1/24") == [{"bip": "10.5.0.1/24"}]


def parse_status(host: str, text: str) -> HostState:
    """The product's own parser of status's round trip (captured without the VNI part: the VNIs are checked on
    the wire in the integration tests)."""
    return parse_host_state(host, text, "labctl.lab=seed-overlay", plan_halves(), vnis=False)


def status_json(raw: dict[str, HostState]) -> dict:
    """summarize's result as `labctl status --json` prints it; it reads back as the same LabStatus."""
    result = summarize(INV, SEED, raw)
    assert LabStatus.from_json(result.as_json()).as_json() == result.as_json()
    return result.as_json()


def test_status_from_real_inspect_output() -> None:
    raw = {h: parse_status(h, captured(f"status-{h}.txt")) for h in ("node1", "node2")}
    result = status_json(raw)
    nets = {n["name"]: n for n in result["networks"]}
    assert nets["ov"]["scope"] == "global" and nets["ov"]["hosts"] == ["node1", "node2"]
    assert nets["ov"]["subnet"] == "172.30.0.0/16" and nets["ov"]["gateway"] == "172.30.0.254"
    assert nets["mv"]["scope"] == "local"
    assert set(nets["mv"]["ip_ranges"]) == {"node1", "node2"}
    assert nets["mv"]["ip_ranges"]["node1"] != nets["mv"]["ip_ranges"]["node2"]
    ctrs = {c["name"]: c for c in result["containers"]}
    assert ctrs["c1"]["host"] == "node1" and ctrs["c1"]["addresses"]["mv"] == "172.29.0.11"
    assert ctrs["c3"]["host"] == "node2" and ctrs["c3"]["addresses"]["ov"].startswith("172.30.")
    assert result["missing"] == []


def test_status_names_what_is_missing() -> None:
    raw = {"node1": parse_status("node1", captured("status-node1.txt")),
           "node2": HostState("node2", error="[node2] ssh: timed out")}
    result = status_json(raw)
    assert "containers.c3: absent on node2" in result["missing"]
    assert "networks.mv: not on node2" in result["missing"]
    assert result["hosts"][1]["error"] == "[node2] ssh: timed out"
