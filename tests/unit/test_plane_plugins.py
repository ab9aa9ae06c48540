"""Control planes as plug-ins (labctl.planes): every plane, the three shipped and a stub from the test suite
registered with one line, passes the same contract: its name is a word `overlay.control` takes (and the schema
knows), the validator applies its traits, `decide` takes it when asked, preflight's one round trip carries its
facts to its parser, and status finds it from its evidence and prints its line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from labctl import facts, planes
from labctl.errors import ValidationError
from labctl.executors import hostfacts as lab
from labctl.model import schema
from labctl.model.inventory import load_inventory
from labctl.model.playbook import parse_playbook
from labctl.plan.controlplane import Engine, decide, effective
from labctl.plan.status import ControlStatus, control_status, status_facts
from labctl.planes.executor_base import executor_halves
from labctl.planes.registry import plan_half
from labctl.views.lab import control_line

ROOT = Path(__file__).parents[2]
INV = load_inventory(str(ROOT / "inventories" / "sandbox.yaml"))
SHIPPED = ("kvstore", "swarm", "vxlan")
ALL = (*SHIPPED, "stub")
ENGINE_20 = "20.10.24+dfsg1"


@pytest.fixture(autouse=True)
def stub_registered(monkeypatch):  # type: ignore[no-untyped-def]
    """The one registry line a new plane needs."""
    monkeypatch.setitem(planes.PLANES, "stub", "tests.unit.stubplane")


def playbook(control: str) -> str:
    store = "store: {backend: etcd}\n" if planes.traits(control).store == "required" else ""
    return (f"name: pl\noverlay: {{control: {control}}}\n{store}networks:\n"
            "  ov: {driver: overlay, subnet: 10.77.0.0/24}\n"
            "containers:\n  c1: {host: node1, networks: [ov]}\n  c2: {host: node2, networks: [ov]}\n")


def problems(text: str) -> str:
    with pytest.raises(ValidationError) as exc:
        parse_playbook(text, "p.yaml", INV)
    return "\n".join(str(p) for p in exc.value.problems)


def test_the_shipped_planes_are_the_registry() -> None:
    assert planes.names()[:3] == SHIPPED and "stub" in planes.names()


@pytest.mark.parametrize("name", ALL)
def test_each_half_names_its_plane(name: str) -> None:
    assert planes.traits(name).name == name and plan_half(name).name == name
    assert executor_halves()[name].name == name
    assert planes.traits(name).store in ("required", "refused")


@pytest.mark.parametrize("name", ALL)
def test_the_validator_takes_the_plane_and_applies_its_traits(name: str) -> None:
    pb = parse_playbook(playbook(name), "p.yaml", INV)
    assert pb.control == name
    assert name in schema.schema("playbook")["properties"]["overlay"]["properties"]["control"]["enum"]
    if planes.traits(name).store == "refused":
        with_store = playbook(name) + "store: {backend: etcd}\n"
        assert f"store: not used with `overlay: {{control: {name}}}`" in problems(with_store)
    else:
        assert f"store: overlay networks with `control: {name}` need a cluster store" in problems(
            playbook(name).replace("store: {backend: etcd}\n", ""))
    per_host = [n for n in pb.networks if n.host_ranges]
    assert bool(per_host) == planes.traits(name).own_vnis


@pytest.mark.parametrize("name", ALL)
def test_decide_takes_the_plane_when_asked_and_effective_runs_it(name: str) -> None:
    engines = [Engine("node1", ENGINE_20), Engine("node2", ENGINE_20)]
    decision = decide(name, "etcd" if planes.traits(name).store == "required" else None, engines)
    assert (decision.control, decision.problems) == (name, [])
    refused = decide(name, None, [Engine("node1", "")])
    assert refused.problems and refused.problems[0].startswith(f"[node1] overlay.control {name}: ")
    pb = parse_playbook(playbook(name), "p.yaml", INV)
    assert effective(pb, name).control == name
    if planes.traits(name).store == "refused":
        assert effective(pb, name).store is None


def test_auto_never_takes_a_plane_that_does_not_ask_for_it() -> None:
    assert "stub" not in planes.registry.auto_order() and "vxlan" not in planes.registry.auto_order()
    assert decide("auto", None, [Engine("node1", ENGINE_20)]).control == "swarm"


@pytest.mark.parametrize("name", ALL)
def test_preflight_round_trip_carries_each_planes_facts_to_its_parser(name: str) -> None:
    asked = lab.preflight_facts()
    script = facts.script(asked)
    half = plan_half(name)
    if half.facts_script:
        assert half.facts_script in script
    output = "".join(f"{f.marker}\n" + ("facts of stub\n" if f.name == "plane.stub" else "") for f in asked)
    found = lab.parse_facts(output, "node1", "pl")
    assert found.planes["stub"] == "facts of stub"
    assert set(found.planes) == set(lab.fact_planes())


def control_facts(stub: str) -> dict[str, str]:
    return {n: stub if n == "stub" else "" for n in planes.names()}


def control_of(pb: Any, answers: dict[str, str]) -> ControlStatus:
    """control_status over the planes' parsed status facts, each host answering `answers[host]` for the stub."""
    halves = planes.registry.plan_halves()
    return control_status(pb, halves, {p: {h: half.parse_facts(h, control_facts(stub)[p] + "\n")
                                           for h, stub in answers.items()} for p, half in halves.items()})


def test_status_finds_the_stub_plane_from_its_evidence_and_prints_its_line() -> None:
    pb = parse_playbook(playbook("stub"), "p.yaml", INV)
    assert plan_half("stub").status_query in facts.script(status_facts("", False, planes.registry.plan_halves(),
                                                                       True))
    control = control_of(pb, {"node1": "stub:pl", "node2": "stub:pl"})
    assert control.plane == "stub"
    assert control.hosts["node1"]["stub"] == "stub:pl"
    assert "swarm" in control.hosts["node1"], "swarm's role is shown for every lab"
    assert control_line(control).endswith("; stub: node1 stub:pl, node2 stub:pl")
    other = control_of(pb, {"node1": "stub:else"})
    assert other.plane is None


def failed_across_hosts(pb: Any) -> list[Any]:
    """Every check across hosts on ov by IP fails: what each plane's diagnosis then says."""
    from labctl.plan.verify import Result, derive
    from tests.unit.test_verify_plan import SEED_FACTS

    return [Result(c, "isolated" if c.network == "ov" and c.src_host != c.dst_host and c.via == "ip" else c.expect)
            for c in derive(pb, SEED_FACTS)]


def causes(pb: Any, diag: Any) -> set[str]:
    from labctl.plan.verify import explain
    from tests.unit.test_verify_plan import SEED_FACTS

    results = failed_across_hosts(pb)
    explain(results, pb, SEED_FACTS, diag)
    return {r.cause for r in results if not r.ok}


def seed(name: str) -> Any:
    from labctl.model.playbook import load_playbook

    return load_playbook(str(ROOT / "playbooks" / name), INV)


def test_swarm_names_the_host_out_of_the_swarm_and_the_firewall_rule() -> None:
    from labctl.plan.verify import Diagnosis
    from labctl.planes.swarm.plan import SwarmDiagnosis

    pb = effective(seed("seed-overlay-swarm.yaml"), "swarm")
    out = causes(pb, Diagnosis(control="swarm", plane=SwarmDiagnosis(out={"node2": "inactive"})))
    assert out == {"node2 is not in the lab's swarm (state: inactive): it cannot carry overlay ov; run `labctl up`"}
    rule = "-A INPUT -p udp -m udp --dport 4789 -j DROP"
    dropped = causes(pb, Diagnosis(control="swarm", plane=SwarmDiagnosis(drops={"node1": [rule]})))
    assert dropped == {f"swarm traffic is dropped on node1 by its firewall: {rule} (swarm needs 2377/tcp, "
                       "7946/tcp+udp and 4789/udp between the docker hosts)"}
    missing = causes(pb, Diagnosis(control="swarm", overlay_missing={"node2": ["ov"]}))
    assert missing == {"node2 does not see overlay ov: no container there is attached to it, or the host left the "
                       "swarm; run `labctl up`"}


def test_kvstore_says_the_host_has_not_joined() -> None:
    from labctl.plan.verify import Diagnosis

    pb = effective(seed("seed-overlay.yaml"), "kvstore")
    assert causes(pb, Diagnosis(store_ok=True, control="kvstore", overlay_missing={"node2": ["ov"]})) == {
        "node2 does not see overlay ov: it has not joined (check cluster-store and cluster-advertise in its "
        "daemon.json, then `labctl up`)"}


def test_vxlan_names_the_faulty_device_then_the_firewall() -> None:
    from labctl.plan.verify import Diagnosis

    pb = effective(seed("seed-overlay-vxlan.yaml"), "vxlan")
    down = causes(pb, Diagnosis(control="vxlan", plane={"node2": ["vxl4200 is down"]}))
    assert down == {"node2: vxl4200 is down; `labctl up` repairs it"}
    rule = "-A INPUT -p udp --dport 4789 -j DROP"
    assert causes(pb, Diagnosis(control="vxlan", vxlan_drops={"node1": [rule]})) == {
        f"VXLAN (UDP 4789) is dropped on node1 by its firewall: {rule}"}
    assert causes(pb, Diagnosis(control="vxlan")) == {
        f"VXLAN (UDP 4789) between {a} and {b} is blocked or lost, though both VXLAN devices are up with their FDB "
        "entries" for a, b in (("node1", "node2"), ("node2", "node1"))}
