"""Golden plans: the seed playbook plus what exists on the hosts -> the steps `up` runs, as JSON files in
tests/unit/data/plans/. Three states: nothing yet (cold), everything as described (warm: no command at all), and
drift (a network's settings changed by hand, a stopped container, an object the playbook no longer has).
Regenerate after a deliberate change with `LABCTL_REGOLD=1 pytest tests/unit/test_golden_plans.py`."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import pytest

from labctl.model.inventory import parse_inventory
from labctl.model.playbook import parse_playbook
from labctl.plan.lab import (
    Existing,
    container_spec,
    network_spec,
    plan_containers,
    plan_detach,
    plan_drift,
    plan_networks,
    spec_hash,
)

ROOT = Path(__file__).parents[2]
PLANS = ROOT / "tests" / "unit" / "data" / "plans"
INV = parse_inventory((ROOT / "inventories" / "sandbox.yaml").read_text(), "inventories/sandbox.yaml")
SEED = parse_playbook((ROOT / "playbooks" / "seed-overlay.yaml").read_text(), "playbooks/seed-overlay.yaml", INV)


def as_described() -> tuple[dict[str, dict[str, Existing]], dict[str, dict[str, Existing]]]:
    nets: dict[str, dict[str, Existing]] = {"node1": {}, "node2": {}}
    for net in SEED.networks:
        for host in ("node1", "node2"):       # the overlay is seen on every host, as `docker network ls` shows it
            nets[host][net.name] = Existing(spec_hash(network_spec(net, host)))
    ctrs: dict[str, dict[str, Existing]] = {"node1": {}, "node2": {}}
    for c in SEED.containers:
        ctrs[c.host][c.name] = Existing(spec_hash(container_spec(c)))
    return nets, ctrs


def state(name: str) -> tuple[dict[str, dict[str, Existing]], dict[str, dict[str, Existing]]]:
    if name == "cold":
        return {}, {}
    nets, ctrs = as_described()
    if name == "drift":
        nets["node2"]["mv"] = Existing("0123456789abcdef")          # changed by hand on node2
        nets["node1"]["old"] = Existing("fedcba9876543210")         # no longer in the playbook
        ctrs["node1"]["c2"] = Existing(ctrs["node1"]["c2"].spec, running=False)
        ctrs["node2"]["c9"] = Existing("aaaaaaaaaaaaaaaa")          # no longer in the playbook
    return nets, ctrs


def plan(name: str) -> dict[str, list[dict[str, object]]]:
    nets, ctrs = state(name)
    drift_ctrs, drift_nets = plan_drift(SEED, nets, ctrs)
    return {"drift containers": [asdict(s) for s in drift_ctrs], "drift networks": [asdict(s) for s in drift_nets],
            "detach": [asdict(s) for s in plan_detach(SEED, INV, nets)],
            "networks": [asdict(s) for s in plan_networks(SEED, INV, nets)],
            "containers": [asdict(s) for s in plan_containers(SEED, ctrs)]}


@pytest.mark.parametrize("name", ["cold", "warm", "drift"])
def test_up_plan_is_the_golden_one(name: str) -> None:
    got = plan(name)
    golden = PLANS / f"seed-overlay-{name}.json"
    if os.environ.get("LABCTL_REGOLD"):
        golden.write_text(json.dumps(got, indent=2) + "\n")
    assert got == json.loads(golden.read_text())


def test_warm_plan_runs_no_command_and_cold_creates_everything() -> None:
    warm = plan("warm")
    assert all(s["command"] is None for steps in warm.values() for s in steps)
    cold = plan("cold")
    assert [s["what"] for s in cold["containers"]] == ["container c1", "container c2", "container c3", "container c4"]
    assert [(s["host"], s["what"]) for s in cold["networks"]] == [
        ("node1", "network ov"), ("node1", "network mv"), ("node2", "network mv")], "the overlay is made once"


def test_drift_plan_names_each_difference() -> None:
    drift = plan("drift")
    assert [(s["host"], s["what"]) for s in drift["drift containers"]] == [
        ("node2", "container c9"), ("node1", "containers on old")]
    assert [(s["host"], s["reason"]) for s in drift["networks"] if s["command"]] == [
        ("node2", "settings changed: recreate")]
    assert [s["host"] for s in drift["detach"]] == ["node2"], "mv's containers on node2 go before mv is recreated"
    started = [s for s in drift["containers"] if s["command"]]
    assert [(s["what"], s["reason"]) for s in started] == [("container c2", "was stopped")]
