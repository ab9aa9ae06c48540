"""The sandbox reconcile plan: what `sandbox up` does given what exists."""

from __future__ import annotations

import os

from labctl.model.inventory import parse_inventory
from labctl.plan.sandbox import HostFacts, Names, SandboxFacts, plan_sandbox

INV = parse_inventory("name: t\nprovider: sandbox\nhosts:\n  s: {roles: [store]}\n  n1: {roles: [docker]}\n", "t.yaml")


def healthy() -> SandboxFacts:
    return SandboxFacts(state_subnet="198.18.0.0/24", switch=True, hosts={
        "s": HostFacts("s", True, "198.18.0.11", ("store",), True),
        "n1": HostFacts("n1", True, "198.18.0.12", ("docker",), True)})


def kinds(actions) -> list[tuple[str, str]]:
    return [(a.kind, a.target) for a in actions]


def test_new_lab_creates_switch_and_every_host() -> None:
    assert kinds(plan_sandbox(INV, SandboxFacts())) == [("create-switch", "t"), ("create-host", "s"),
                                                        ("create-host", "n1")]


def test_healthy_lab_is_kept_unchanged() -> None:
    assert {k for k, _ in kinds(plan_sandbox(INV, healthy()))} == {"keep-host"}


def test_dead_host_is_rebuilt_alone() -> None:
    facts = healthy()
    facts.hosts["n1"] = HostFacts("n1", False, "198.18.0.12", ("docker",), False)
    assert kinds(plan_sandbox(INV, facts)) == [("keep-host", "s"), ("destroy-host", "n1"), ("create-host", "n1")]


def test_leftovers_without_switch_reset_the_lab() -> None:
    facts = SandboxFacts(state_subnet=None, switch=False, stray_hosts=["n1"])
    plan = kinds(plan_sandbox(INV, facts))
    assert plan[0] == ("reset-lab", "t") and ("create-host", "n1") in plan


def test_host_removed_from_inventory_is_destroyed() -> None:
    facts = healthy()
    facts.hosts["old"] = HostFacts("old", True, "198.18.0.20", ("docker",), True)
    assert ("destroy-host", "old") in kinds(plan_sandbox(INV, facts))


def test_subnet_change_resets_lab() -> None:
    facts = healthy()
    facts.state_subnet = "198.18.5.0/24"
    assert kinds(plan_sandbox(INV, facts))[0] == ("reset-lab", "t")


def test_kernel_names_fit_and_differ_between_labs() -> None:
    a, b = Names("classroom-lab-01"), Names("classroom-lab-02")
    for n in (a, b):
        for name in (n.controller_if, n.controller_peer, n.port("some-long-host-name"), n.host_if_tmp("x")):
            assert len(name) <= 15
    assert a.prefix != b.prefix and a.marker("h") != b.marker("h")


def test_cgroups_are_matched_by_exact_host_and_lab(tmp_path, monkeypatch) -> None:
    """node1's teardown must not wait on node10's live cgroups; lab 'a' must not take lab 'a-b''s."""
    from labctl.providers import sandbox

    for name in ("labctl-a-node1", "labctl-a-node10", "labctl-a-b-node1"):
        (tmp_path / "unified" / name / "docker" / "abc").mkdir(parents=True)
    monkeypatch.setattr(sandbox, "CGROUP_ROOT", str(tmp_path))
    monkeypatch.setattr(sandbox, "existing_labs", lambda: {"a": "198.18.1.0/24", "a-b": "198.18.2.0/24"})
    assert [os.path.basename(d) for d in sandbox.host_cgroup_dirs("a", "node1")] == ["labctl-a-node1"]
    assert sorted(os.path.basename(d) for d in sandbox.lab_cgroup_dirs("a")) == ["labctl-a-node1", "labctl-a-node10"]
    assert [os.path.basename(d) for d in sandbox.lab_cgroup_dirs("a-b")] == ["labctl-a-b-node1"]
