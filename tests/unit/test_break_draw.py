"""The draw of `break --class --random`: neighbours differ, the seed decides, every option of a scenario is tried."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from labctl.model.inventory import parse_inventory
from labctl.model.playbook import load_playbook
from labctl.plan.breaks import SCENARIOS, draw

ROOT = Path(__file__).parents[2]
STUDENTS = [f"student{i}" for i in range(1, 31)]


@pytest.mark.parametrize("seed", range(20))
def test_neighbours_in_the_class_file_get_different_scenarios(seed: int) -> None:
    got = draw.draw_scenarios(STUDENTS, seed)
    assert all(got[a] != got[b] for a, b in zip(STUDENTS, STUDENTS[1:], strict=False))
    assert got[STUDENTS[0]] != got[STUDENTS[-1]], "a class seated in a ring"
    assert set(got.values()) <= set(draw.RANDOM_POOL)


def test_the_seed_decides_the_draw() -> None:
    assert draw.draw_scenarios(STUDENTS, 1) == draw.draw_scenarios(STUDENTS, 1)
    assert len({tuple(draw.draw_scenarios(STUDENTS, s).values()) for s in range(10)}) == 10
    assert len(set(draw.draw_scenarios(STUDENTS, 1).values())) == len(draw.RANDOM_POOL), "30 students use them all"


def test_the_pool_is_scenarios_that_exist() -> None:
    assert set(draw.RANDOM_POOL) <= set(SCENARIOS) and "mtu-lowered" not in draw.RANDOM_POOL


def test_every_host_container_or_network_is_tried_then_the_default() -> None:
    inv = parse_inventory((ROOT / "inventories" / "sandbox.yaml").read_text(), str(ROOT / "inventories/sandbox.yaml"))
    pb = load_playbook(str(ROOT / "playbooks" / "seed-overlay.yaml"), inv)
    hosts = list(draw.option_draws("vxlan-blocked", inv, pb, random.Random(1)))
    assert sorted(h for h, _, _ in hosts[:-1]) == ["node1", "node2"] and hosts[-1] == (None, None, None)
    ctrs = list(draw.option_draws("container-stopped", inv, pb, random.Random(1)))
    assert sorted(c for _, c, _ in ctrs[:-1]) == ["c1", "c2", "c3", "c4"]
    nets = list(draw.option_draws("container-disconnected", inv, pb, random.Random(1)))
    assert len(nets) == 8 + 1 and {n for _, _, n in nets[:-1]} == {"ov", "mv"}
    orders = {tuple(draw.option_draws("container-stopped", inv, pb, draw.student_rng(1, s))) for s in STUDENTS}
    assert len(orders) > 1, "students of one class get different containers"
