"""Classroom inputs (pure): exercise files and class files are validated like playbooks (every problem at once,
named by file and field, exit 2 before any host is asked), and the break scenarios plan exactly the commands that
inject and revert their fault."""

from __future__ import annotations

import json
import shlex
import textwrap
from pathlib import Path

import pytest

from labctl import cli
from labctl.errors import UsageError, ValidationError
from labctl.executors.nsprobe import read_sized_spec, read_spec
from labctl.executors.verify import ns_probe_script, parse_misroutes, probe_script
from labctl.facts.host import Underlay
from labctl.model.class_roster import load_roster
from labctl.model.exercise import ANY, parse_exercise
from labctl.model.inventory import parse_inventory
from labctl.model.playbook import parse_playbook
from labctl.plan import breaks
from labctl.plan.verify import Check, Diagnosis, Facts, Result, derive, explain
from labctl.providers.class_sandbox import free_subnets, student_lab, write_class

ROOT = Path(__file__).parents[2]
INV = parse_inventory((ROOT / "inventories" / "sandbox.yaml").read_text(), "inventories/sandbox.yaml")
SEED = parse_playbook((ROOT / "playbooks" / "seed-overlay.yaml").read_text(), "seed-overlay.yaml", INV)


def problems(text: str) -> list[str]:
    with pytest.raises(ValidationError) as exc:
        parse_exercise(textwrap.dedent(text), "ex.yaml", INV)
    return [f"{p.field}: {p.message}" for p in exc.value.problems]


def test_shipped_exercises_validate_with_labctl_validate(capsys: pytest.CaptureFixture) -> None:
    for path in sorted((ROOT / "exercises").glob("*.yaml")):
        assert cli.main(["validate", "-i", str(ROOT / "inventories" / "sandbox.yaml"), "-e", str(path)]) == 0
        assert "ok (" in capsys.readouterr().out
        assert (ROOT / "exercises" / "solutions" / f"{path.stem}.sh").exists(), "every exercise has its solution"


def test_every_problem_of_an_exercise_is_reported_at_once() -> None:
    found = problems("""
        name: ex
        tasks:
          - id: net
            points: 2
            networks:
              web: {driver: bridge, subnet: 10.10.1.0/24, gateway: 10.10.2.1, colour: red, hosts: [node9]}
          - id: net
            containers:
              web1: {host: node7, networks: {nosuch: {}}}
              web2: {host: node1, networks: {web: {ip: 10.10.9.9}}, network_mode: host}
            expect:
              - {from: ghost, to: web1, expect: reach}
              - {from: web1, to_host: node5, network: nowhere, expect: isolated}
        """)
    assert found == [
        "tasks[0].networks.web.colour: unknown field; allowed: name, driver, subnet, gateway, ip_range, bridge_name, "
        "parent, options, hosts",
        "tasks[0].networks.web.gateway: 10.10.2.1 is not inside subnet 10.10.1.0/24",
        "tasks[0].networks.web.hosts: 'node9' is not a docker host of the inventory; docker hosts: node1, node2",
        "tasks[1].containers.web1.host: 'node7' is not a docker host of the inventory; docker hosts: node1, node2",
        "tasks[1].containers.web2.network_mode: cannot be combined with `networks`: choose one",
        "tasks[1].id: task id 'net' is used twice",
        "tasks[1].containers.web1.networks.nosuch: no network 'nosuch' in this exercise; networks: web, bridge",
        "tasks[1].containers.web2.networks.web: network 'web' is not on host 'node1' (its hosts: node9)",
        "tasks[1].containers.web2.networks.web.ip: 10.10.9.9 is not inside web's subnet 10.10.1.0/24",
        "tasks[1].expect[0].from: no container 'ghost' in this exercise",
        "tasks[1].expect[1].to_host: 'node5' is not a docker host of the inventory",
        "tasks[1].expect[1].network: no network 'nowhere' in this exercise; networks: web, bridge"]


def test_any_and_names() -> None:
    ex = parse_exercise(textwrap.dedent("""
        name: ex
        tasks:
          - id: t
            networks:
              mine: {name: any, driver: bridge, subnet: any, hosts: [node1]}
            containers:
              c1: {host: node1, name: any, running: any, networks: {mine: {ip: any}}}
        """), "ex.yaml", INV)
    net, ctr = ex.network("mine"), ex.container("c1")
    assert net is not None and net.name is None and dict(net.fields) == {"subnet": ANY}
    assert ctr is not None and ctr.name is None and ctr.running is None and ctr.networks[0].ip == ANY
    assert problems("name: ex\ntasks:\n  - id: t\n    containers:\n      c1: {host: node1}\n      c2: "
                    "{host: node1, name: c1}\n") == ["tasks[0].containers.c2: the Docker name 'c1' is also "
                                                     "container 'c1'"]


def test_class_file_names_the_student_whose_inventory_is_wrong(tmp_path: Path) -> None:
    good = (ROOT / "inventories" / "sandbox.yaml").read_text()
    (tmp_path / "a.yaml").write_text(good.replace("name: sandbox", "name: sbx-a"))
    (tmp_path / "b.yaml").write_text(good.replace("subnet: 198.18.0.0/24", "subnet: 198.18.0.0/33"))
    (tmp_path / "class.yaml").write_text("students:\n  alice: a.yaml\n  bob: {inventory: b.yaml}\n  '=x': a.yaml\n"
                                         "  carol: missing.yaml\n")
    with pytest.raises(ValidationError) as exc:
        load_roster(str(tmp_path / "class.yaml"))
    text = [str(p) for p in exc.value.problems]
    assert any("students.=x" in t and "not a student name" in t for t in text)
    assert any(t.startswith(f"{tmp_path}/b.yaml: underlay.subnet") and "(student bob in" in t for t in text)
    assert any("missing.yaml: (file): cannot read" in t and "student carol" in t for t in text)
    (tmp_path / "class.yaml").write_text("students:\n  alice: a.yaml\n")
    roster = load_roster(str(tmp_path / "class.yaml"))
    assert [s.name for s in roster.students] == ["alice"] and roster.students[0].inventory.name == "sbx-a"


def test_class_file_causes_setting_is_checked_and_kept_in_the_fault_record(tmp_path: Path) -> None:
    good = (ROOT / "inventories" / "sandbox.yaml").read_text()
    (tmp_path / "a.yaml").write_text(good)
    (tmp_path / "class.yaml").write_text("causes: secret\nstudents:\n  alice: a.yaml\n")
    with pytest.raises(ValidationError) as exc:
        load_roster(str(tmp_path / "class.yaml"))
    assert [f"{p.field}: {p.message}"[:41] for p in exc.value.problems] == ["causes: 'secret' is not one of show, hide"]
    (tmp_path / "class.yaml").write_text("causes: hide\nstudents:\n  alice: a.yaml\n")
    assert load_roster(str(tmp_path / "class.yaml")).causes == "hide"
    (tmp_path / "class.yaml").write_text("students:\n  alice: a.yaml\n")
    assert load_roster(str(tmp_path / "class.yaml")).causes == "show"
    action = breaks.Action("node2", ("true",), ("true",))
    inj = breaks.Injection("vxlan-blocked", "seed", "UDP 4789 on node2", (action,), causes="hide")
    record = breaks.parse_record(inj.record(0))
    assert record is not None and record["causes"] == "hide" and record["undo"] == ["true"]


def test_a_class_of_sandbox_labs_takes_free_subnets_and_keeps_them(tmp_path: Path) -> None:
    assert student_lab("sandbox", 3) == "sandbox-s3" and len(student_lab("a-very-long-labname", 40)) <= 16
    existing = {"sandbox": "198.18.0.0/24", "ivfy": "198.18.2.0/24", "sandbox-s2": "198.18.9.0/24"}
    labs = ["sandbox-s1", "sandbox-s2", "sandbox-s3"]
    assert free_subnets(INV, labs, existing) == {"sandbox-s1": "198.18.1.0/24", "sandbox-s2": "198.18.9.0/24",
                                                 "sandbox-s3": "198.18.3.0/24"}
    roster = load_roster(write_class(INV, 3, str(tmp_path / "cls"), existing))
    assert [(s.name, s.inventory.name, str(s.inventory.subnet)) for s in roster.students] == [
        ("student1", "sandbox-s1", "198.18.1.0/24"), ("student2", "sandbox-s2", "198.18.9.0/24"),
        ("student3", "sandbox-s3", "198.18.3.0/24")]
    assert [h.name for h in roster.students[0].inventory.hosts] == ["store", "node1", "node2"]


FACTS = breaks.LabFacts(underlay={"node1": Underlay("198.18.0.12", 1500), "node2": Underlay("198.18.0.13", 1500)},
                        state={c: "running" for c in ("c1", "c2", "c3", "c4")},
                        addresses={"c4": {"ov": "172.30.0.3", "mv": "172.29.0.14"}})


def test_every_scenario_plans_its_fault_and_its_undo() -> None:
    plans = {s: breaks.plan_break(SEED, INV, s, FACTS) for s in breaks.SCENARIOS}
    assert plans["vxlan-blocked"].actions[0].host == "node2"
    assert "--dport 4789" in plans["vxlan-blocked"].actions[0].apply[0]
    assert plans["vxlan-blocked"].actions[0].undo[0].startswith("for i in 1 2 3 4 5 6 7 8; do iptables -D INPUT")
    store, restart = plans["store-stopped"].actions
    assert (store.host, store.apply, store.undo) == ("store", (breaks.STORE_STOP,), (breaks.STORE_START,))
    assert restart.host == "node2" and "docker restart -t 1 c4" in restart.apply[0]
    assert plans["mtu-lowered"].actions[0].apply == ("ip link set dev eth1 mtu 1400",)
    assert plans["mtu-lowered"].actions[0].undo == ("ip link set dev eth1 mtu 1500",)
    assert plans["container-stopped"].actions[0].undo == ("docker start c4 >/dev/null",)
    undo = plans["container-disconnected"].actions[0].undo[0]
    assert undo.endswith("|| docker network connect --ip 172.30.0.3 ov c4"), "the same address back"
    wrong = plans["wrong-subnet"].actions[0]
    assert wrong.host == "node1" and "--subnet 198.18.0.12/30 --gateway 198.18.0.14" in wrong.apply[0]
    assert "docker network rm in-the-way" in wrong.undo[0] and "= 198.18.0.12/30 ]" in wrong.undo[0], \
        "undo removes the network only when it is the one made (its subnet is in the record)"
    for inj in plans.values():     # the fault does not give itself away: no labctl marker in what it leaves
        assert not any("labctl" in command for a in inj.actions for command in a.apply), inj.scenario
    for inj in plans.values():
        for step, action in enumerate(inj.actions):
            record = breaks.parse_record(inj.record(step))
            assert record is not None and record["undo"] == list(action.undo) and record["step"] == step
            for command in action.apply + action.undo:
                if ":" not in command.split()[0]:
                    shlex.split(command)   # well-formed shell words


def test_scenarios_refuse_labs_they_do_not_fit() -> None:
    swarm = parse_playbook((ROOT / "playbooks" / "seed-overlay-swarm.yaml").read_text(), "swarm.yaml", INV)
    modes = parse_playbook((ROOT / "playbooks" / "network-modes.yaml").read_text(), "modes.yaml", INV)
    with pytest.raises(UsageError, match="needs a cluster store"):
        breaks.plan_break(swarm, INV, "store-stopped", FACTS)
    with pytest.raises(UsageError, match="needs an overlay network with containers on two docker hosts"):
        breaks.plan_break(modes, INV, "mtu-lowered", FACTS)
    with pytest.raises(UsageError, match="no scenario 'nosuch'"):
        breaks.plan_break(SEED, INV, "nosuch", FACTS)
    with pytest.raises(UsageError, match="--container 'c9' is not a container"):
        breaks.plan_break(SEED, INV, "container-stopped", FACTS, container="c9")
    stopped = breaks.LabFacts(FACTS.underlay, {**FACTS.state, "c4": "exited"}, FACTS.addresses)
    with pytest.raises(UsageError, match="c4 is exited on node2, not running"):
        breaks.plan_break(SEED, INV, "container-stopped", stopped)
    low = breaks.LabFacts({**FACTS.underlay, "node2": Underlay("198.18.0.13", 1400)}, FACTS.state)
    with pytest.raises(UsageError, match="already has MTU 1400"):
        breaks.plan_break(SEED, INV, "mtu-lowered", low)


def test_break_arguments_are_checked_before_any_host(capsys: pytest.CaptureFixture) -> None:
    seed = str(ROOT / "playbooks" / "seed-overlay.yaml")
    assert cli.main(["break", "-p", seed]) == 2
    assert cli.main(["break", "-p", seed, "nosuch"]) == 2
    assert cli.main(["break", "-p", seed, "--undo", "--host", "node1"]) == 2
    err = capsys.readouterr().err
    assert "give a scenario to inject, or --undo" in err and "no scenario 'nosuch'" in err
    assert cli.main(["list-scenarios", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in listed] == list(breaks.SCENARIOS) and all(s["symptom"] for s in listed)


def test_whole_packet_checks_reach_both_probes() -> None:
    check = Check("c1", "node1", "c3", "node2", "ov", "172.30.0.1", "reach", "size", "r", 1422)
    script = ns_probe_script([(7, check)], "/h.py")
    assert "\n7 172.30.0.1 reach 1422\n" in script
    assert read_sized_spec(script) == [(7, "172.30.0.1", True, 1422)] and read_spec(script) == []
    assert "p 7 172.30.0.1 1422 &" in probe_script([(7, check)]) and "${3:+-s $3}" in probe_script([(7, check)])


def results_with(failed: set[tuple[str, str, str]]) -> tuple[list[Result], Facts]:
    facts = Facts(state={c: "running" for c in ("c1", "c2", "c3", "c4")},
                  addresses={"c1": {"ov": "172.30.0.2", "mv": "172.29.0.11"},
                             "c2": {"ov": "172.30.0.4", "mv": "172.29.0.12"},
                             "c3": {"ov": "172.30.0.1", "mv": "172.29.0.13"},
                             "c4": {"ov": "172.30.0.3", "mv": "172.29.0.14"}},
                  host_addresses={"node1": "198.18.0.12", "node2": "198.18.0.13"})
    results = [Result(c, "isolated" if (c.src, c.dst, c.via) in failed or
                      ("*", c.network, c.via) in failed else c.expect) for c in derive(SEED, facts)]
    return results, facts


def test_causes_for_whole_packets_a_detached_container_and_a_misrouted_peer() -> None:
    results, facts = results_with({("*", "ov", "size")})
    explain(results, SEED, facts, Diagnosis(store_ok=True, underlay_mtu={"node1": 1500, "node2": 1400}))
    bad = [r for r in results if not r.ok]
    assert len(bad) == 2 and all(r.cause.startswith("underlay MTU 1400 on node2 is below the 1500 bytes") for r in bad)
    results, facts = results_with({("c4", "c1", "ip"), ("c1", "c4", "ip")})
    explain(results, SEED, facts, Diagnosis(store_ok=True, actual_networks={"c1": ["ov", "mv"], "c4": ["mv"]}))
    assert {r.cause for r in results if not r.ok and r.check.network == "ov"} == {
        "c4 is not attached to ov (disconnected by hand?): `docker network connect ov c4` on node2, or `labctl up`"}
    lines = ["misroute 198.18.0.13 br-186e24614a48 in-the-way 198.18.0.12/30", "unrelated",
             "misroute 198.18.0.12 eth0"]   # through another interface, no Docker network: a routed underlay
    routes = parse_misroutes(lines, {"198.18.0.13": "node2", "198.18.0.12": "node1"})
    assert routes == {"node2": "br-186e24614a48 (network in-the-way, subnet 198.18.0.12/30)"}
    results, facts = results_with({("*", "ov", "ip"), ("*", "ov", "size"), ("*", "ov", "name")})
    explain(results, SEED, facts, Diagnosis(store_ok=True, misroutes={"node1": routes}))
    cross = [r for r in results if not r.ok and r.check.src_host != r.check.dst_host]
    assert cross and all(r.cause.startswith("node1 routes node2's underlay address through br-186e24614a48 "
                                            "(network in-the-way") for r in cross)
