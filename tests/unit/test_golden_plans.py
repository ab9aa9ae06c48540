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
from labctl.plan.down import DownFacts, plan_down
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


# ---------------------------------------------------------------- down

def down_state(name: str) -> dict[str, DownFacts]:
    """What down's one query finds: the seed lab up; a re-run after a down killed half-way (node1's containers
    gone, node2 not touched yet); nothing left."""
    up = {h: DownFacts(h, tuple(c.name for c in SEED.containers if c.host == h),
                       tuple((n.name, n.driver) for n in SEED.networks if h in n.hosts)) for h in ("node1", "node2")}
    if name == "up":
        return up
    if name == "half-down":
        return {"node1": DownFacts("node1", (), up["node1"].networks), "node2": up["node2"]}
    return {h: DownFacts(h) for h in ("node1", "node2")}


def down_plan(name: str) -> dict[str, list[dict[str, object]]]:
    p = plan_down(down_state(name), ["node1", "node2"])
    return {"containers": [asdict(s) for s in p.containers], "networks": [asdict(s) for s in p.networks]}


@pytest.mark.parametrize("name", ["up", "half-down", "gone"])
def test_down_plan_matches_its_golden_file(name: str) -> None:
    path = PLANS / f"seed-overlay-down-{name}.json"
    got = down_plan(name)
    if os.environ.get("LABCTL_REGOLD"):
        path.write_text(json.dumps(got, indent=2) + "\n")
    assert got == json.loads(path.read_text()), f"{path.name} differs; LABCTL_REGOLD=1 rewrites it"


def test_down_plan_properties() -> None:
    up = plan_down(down_state("up"), ["node1", "node2"])
    assert [s.host for s in up.containers] == ["node1", "node2"]
    assert [s.host for s in up.networks] == ["node1"] * 3 + ["node2"] * 3, "each host's networks, then its gwbridge"
    assert all("timeout " in s.command for s in up.containers + up.networks if s.command), "no Docker call unbounded"
    assert all(s.reports for s in up.containers + up.networks), "a step only reports what it did"
    gone = plan_down(down_state("gone"), ["node1", "node2"])
    assert gone.containers == [] and [s.what for s in gone.networks] == ["network docker_gwbridge"] * 2
    half = plan_down(down_state("half-down"), ["node1"])
    assert half.containers == [] and {s.host for s in half.networks} == {"node1"}, "an unreachable host is left out"
