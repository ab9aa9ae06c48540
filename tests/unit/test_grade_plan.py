"""Grading (pure) on real `docker inspect` output captured from Docker 20.10.24 after every shipped exercise's
reference solution was typed by hand on node1 and node2 (no labctl labels): the solutions earn full marks, and
each deliberate mistake, made by editing that output as Docker would show it, costs exactly its task's points
with a message that names what was found and what was expected."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from labctl.executors.verify import underlay_facts
from labctl.facts import answers
from labctl.facts.host import Underlay
from labctl.model.exercise import load_exercise, parse_exercise
from labctl.model.inventory import parse_inventory
from labctl.plan import grade as g
from labctl.plan.verify import Result
from labctl.views.gradebook import class_dict, report_dict, roster_rows, to_csv, to_junit

ROOT = Path(__file__).parents[2]
DATA = Path(__file__).parent / "data"
INV = parse_inventory((ROOT / "inventories" / "sandbox.yaml").read_text(), "inventories/sandbox.yaml")
# fix-the-lab grades the seed lab, which the captured output below does not hold: its full marks after a repair
# are proven on real hosts (tests/integration/test_break_class.py).
EXERCISES = sorted(p.stem for p in (ROOT / "exercises").glob("*.yaml") if p.stem != "fix-the-lab")
UNDERLAY = {"node1": "198.18.0.12", "node2": "198.18.0.13"}


def captured() -> dict[str, g.HostObjects]:
    return {h: g.objects_from(answers(h, g.object_facts(), (DATA / f"grade-{h}-20.10.24.txt").read_text()))
            for h in ("node1", "node2")}


def exercise(name: str):
    return load_exercise(str(ROOT / "exercises" / f"{name}.yaml"), INV)


def run(ex, objects, answers=None, unreachable=None):  # type: ignore[no-untyped-def]
    """Grade as the executor does; probes answer as `answers` says (default: as expected)."""
    m = g.match_objects(ex, objects)
    todo, cannot = g.probes(ex, objects, m, UNDERLAY)
    answers = answers or {}
    results = [(p, Result(p.check, answers.get((p.check.src, p.check.address), p.check.expect))) for p in todo]
    return g.grade(ex, g.unreachable_findings(ex, unreachable or {}), g.object_findings(ex, objects, m), cannot,
                   g.probe_findings(results)), todo


def failures(results, task: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [f.text for r in results if r.task.id == task for f in r.findings if not f.ok]


def test_captured_output_parses() -> None:
    objects = captured()
    assert objects["node1"].engine.startswith("20.10.24")
    assert {"web", "lan", "ov", "bridge", "docker_gwbridge"} <= set(objects["node1"].networks)
    assert {"alpha", "beta", "web1", "web2", "outsider", "web", "hostnet", "nonet", "sidecar", "m1", "o1"} <= \
        set(objects["node1"].containers)
    assert set(objects["node2"].containers) == {"m2", "o2"}
    address, tools = underlay_facts(INV)
    got = answers("node1", [*g.object_facts(), address, tools], (DATA / "grade-node1-20.10.24.txt").read_text())
    assert got[address] == Underlay("198.18.0.12", 1500) and got[tools] == ()
    assert got.complete


@pytest.mark.parametrize("name", EXERCISES)
def test_reference_solutions_earn_full_marks(name: str) -> None:
    ex = exercise(name)
    results, todo = run(ex, captured())
    assert [f.text for r in results for f in r.findings if not f.ok] == []
    assert g.total(results) == (ex.max_points, ex.max_points)
    assert len(todo) == sum(len(t.expect) for t in ex.tasks), "one probe per expectation here"


def test_probes_use_the_addresses_docker_gave() -> None:
    _, todo = run(exercise("user-bridge"), captured())
    by = {(p.check.src, p.check.dst): p.check for p in todo}
    assert by[("web1", "web2")].address == "10.10.1.128" and by[("web1", "web2")].network == "web"
    assert by[("web2", "web1")].via == "name" and by[("web2", "web1")].address == "web1"
    assert by[("outsider", "web1")].address == "10.10.1.10" and by[("outsider", "web1")].expect == "isolated"
    _, todo = run(exercise("macvlan"), captured())
    own = next(p.check for p in todo if p.check.via == "host")
    assert (own.src, own.address, own.expect) == ("m1", "198.18.0.12", "isolated")
    _, todo = run(exercise("overlay"), captured())
    assert {(p.check.src, p.check.src_host) for p in todo} >= {("o1", "node1"), ("o2", "node2")}


def edit(objects, host: str, kind: str, name: str, fn) -> dict:  # type: ignore[no-untyped-def]
    objects = copy.deepcopy(objects)
    fn(getattr(objects[host], kind)[name])
    return objects


def test_wrong_subnet_costs_the_network_task_and_says_what_was_found() -> None:
    def wrong(n):  # type: ignore[no-untyped-def]
        n["IPAM"]["Config"][0].update(Subnet="172.30.2.0/24", Gateway="172.30.2.1", IPRange="172.30.2.128/25")

    results, _ = run(exercise("user-bridge"), edit(captured(), "node1", "networks", "web", wrong))
    assert failures(results, "network") == [
        "network web (node1): subnet 172.30.2.0/24, expected 10.10.1.0/24",
        "network web (node1): gateway 172.30.2.1, expected 10.10.1.1",
        "network web (node1): ip_range 172.30.2.128/25, expected 10.10.1.128/25"]
    assert g.total(results) == (7, 10)


def test_a_student_name_matches_a_network_named_any() -> None:
    text = (ROOT / "exercises" / "user-bridge.yaml").read_text().replace("      web:\n        driver: bridge",
                                                                       "      web:\n        name: any\n"
                                                                       "        driver: bridge", 1)
    ex = parse_exercise(text, "ub.yaml", INV)
    objects = captured()
    objects["node1"].networks["web77"] = objects["node1"].networks.pop("web")
    for c in objects["node1"].containers.values():
        nets = c["NetworkSettings"]["Networks"]
        if "web" in nets:
            nets["web77"] = nets.pop("web")
    results, _ = run(ex, objects)
    assert g.total(results) == (10, 10), [f.text for r in results for f in r.findings if not f.ok]
    assert any("network web77 (node1): driver bridge, subnet 10.10.1.0/24" in f.text for r in results
               for f in r.findings)


def test_a_fixed_name_is_not_matched_to_another_network() -> None:
    objects = captured()
    objects["node1"].networks["web77"] = objects["node1"].networks.pop("web")
    results, _ = run(exercise("user-bridge"), objects)
    assert failures(results, "network") == ["network web (node1): not found; networks there: lan, ov, web77"]


def test_container_mistakes() -> None:
    objects = captured()
    web1 = objects["node1"].containers["web1"]
    web1["NetworkSettings"]["Networks"]["web"]["IPAddress"] = "10.10.1.129"
    web1["NetworkSettings"]["Networks"]["bridge"] = {"IPAddress": "172.17.0.9", "Aliases": None}
    objects["node1"].containers["web2"]["State"]["Status"] = "exited"
    results, _ = run(exercise("user-bridge"), objects)
    assert failures(results, "static-ip") == [
        "container web1 (node1): address on web 10.10.1.129, expected 10.10.1.10",
        "container web1 (node1): also on network bridge, which the task does not ask for"]
    assert failures(results, "dynamic-ip") == ["container web2 (node1): exited, expected running"]
    assert failures(results, "by-name") == ["web2 -> the name web1: cannot probe, web2 is exited"]
    assert g.total(results) == (5, 10)


def test_missing_container_and_one_on_another_host() -> None:
    objects = captured()
    objects["node2"].containers["m1"] = objects["node1"].containers.pop("m1")
    results, _ = run(exercise("macvlan"), objects)
    assert failures(results, "containers") == ["container m1 (node1): not found; it exists on node2"]
    assert "cannot probe, m1 not found on node1" in failures(results, "across-hosts")[0]
    assert g.total(results) == (3, 8)


def test_modes_ports_and_a_shared_stack_by_id() -> None:
    objects = captured()
    web = objects["node1"].containers["web"]
    web["HostConfig"]["PortBindings"] = {"80/tcp": [{"HostIp": "", "HostPort": "8081"}]}
    objects["node1"].containers["hostnet"]["HostConfig"]["NetworkMode"] = "default"
    results, _ = run(exercise("single-host-modes"), objects)
    assert failures(results, "published") == [
        "container web (node1): port 80/tcp published as 0.0.0.0:8081, expected 8080:80"]
    assert failures(results, "host-mode") == ["container hostnet (node1): network mode bridge, expected host"]
    assert failures(results, "shared-stack") == [], "container:<id> is resolved to the container's name"
    assert g.total(results) == (4, 8)


def test_probe_outcomes_decide_the_reachability_tasks() -> None:
    results, _ = run(exercise("default-bridge"), captured(), answers={("alpha", "beta"): "reach"})
    assert failures(results, "no-names") == ["alpha -> the name beta: answered, expected isolated"]
    assert failures(results, "by-address") == []
    assert g.total(results) == (3, 4)


def test_an_unreachable_host_fails_the_tasks_that_need_it_and_only_those() -> None:
    objects = captured()
    del objects["node2"]
    results, todo = run(exercise("macvlan"), objects, unreachable={"node2": "connection refused"})
    assert failures(results, "containers") == ["host node2 cannot be asked: connection refused"]
    assert failures(results, "network") == ["host node2 cannot be asked: connection refused"]
    assert failures(results, "own-host") == [], "m1 and its own host are on node1"
    assert all(p.check.src_host == "node1" and p.check.dst_host != "node2" for p in todo)


def reports() -> list[g.Report]:
    ex = exercise("user-bridge")
    full, _ = run(ex, captured())
    objects = captured()
    objects["node1"].containers["web2"]["State"]["Status"] = "exited"
    some, _ = run(ex, objects)
    return [g.Report(ex, "a.yaml", full, {}, 1.0, student="alice"),
            g.Report(ex, "b.yaml", some, {}, 1.2, student="bob"),
            g.Report(ex, "c.yaml", g.grade(ex), {}, 0.1, student="carol", error="node1: connection refused")]


def test_roster_csv_json_and_junit() -> None:
    rs = reports()
    header, rows = roster_rows(rs)
    assert header == ["student", "network", "static-ip", "dynamic-ip", "by-name", "isolated", "total", "max", "status"]
    assert rows[0][-3:] == ["10", "10", "full marks"]
    assert rows[1][1:7] == ["3", "2", "0", "0", "2", "7"]
    assert rows[2][1:7] == ["-"] * 6 and rows[2][-1] == "unreachable: node1: connection refused"
    assert to_csv(rs).splitlines()[2] == "bob,3,2,0,0,2,7,10,2 task(s) failed"
    data = json.loads(json.dumps(class_dict("net101", rs, 2.5)))
    assert [s["points"] for s in data["students"]] == [10, 7, 0]
    assert data["students"][2]["error"] == "node1: connection refused"
    one = report_dict(rs[1])
    assert one["tasks"][2] == {"id": "dynamic-ip", "title": "web2 on web, with an address Docker chooses",
                               "points": 0, "max_points": 1, "ok": False, "findings": [
                                   {"ok": False, "text": "container web2 (node1): exited, expected running"},
                                   {"ok": True, "text": "container web2 (node1): on web (10.10.1.128)"}]}
    root = ET.fromstring(to_junit(rs))
    suites = root.findall("testsuite")
    assert [s.get("failures") for s in suites] == ["0", "2", "0"] and suites[2].get("errors") == "5"
    assert len(suites[1].findall("testcase")) == 5
    failure = suites[1].find("testcase[3]/failure")
    assert failure is not None and failure.get("message") == "0/1 points"


def test_nothing_checked_earns_nothing_and_says_why() -> None:
    ex = exercise("overlay")
    results, todo = run(ex, {}, unreachable={"node1": "timed out", "node2": "timed out"})
    assert todo == [] and g.total(results) == (0, 7)
    assert failures(results, "network") == ["nothing could be checked: no docker host answered"]
    assert failures(results, "containers") == ["host node1 cannot be asked: timed out",
                                               "host node2 cannot be asked: timed out"]


def test_the_state_probes_use_is_the_matched_containers_own() -> None:
    objects = captured()
    ex = exercise("macvlan")
    other = copy.deepcopy(objects["node1"].containers["m1"])
    other["State"]["Status"] = "exited"
    objects["node2"].containers["m1"] = other        # a stopped m1 on the other host must not count
    assert g.probe_state(ex, objects, g.match_objects(ex, objects)) == {"m1": "running", "m2": "running"}
