"""`labctl grade` for real: every shipped exercise's reference solution, typed by hand through `labctl ssh` (plain
docker commands, no labctl labels), earns full marks; a solution with deliberate mistakes loses exactly the expected
points with the expected messages; grading changes nothing on the hosts. Then a class of five sandbox student
labs, one of them unreachable, graded in one command."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

from .conftest import Lab, make_lab

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB = "igrd"
SUBNET = "198.18.96.0/24"
DOCKER_HOSTS = ("node1", "node2")

# Per exercise: what a student got wrong (typed after the reference solution) and what grading must then say:
# the tasks that fail, a message each must show, and the points left.
MISTAKES: dict[str, tuple[list[tuple[str, str]], dict[str, list[str]], int]] = {
    "default-bridge": (
        [("node1", "docker network create mynet"), ("node1", "docker network connect mynet alpha"),
         ("node1", "docker network connect mynet beta")],
        {"two-containers": [r"container alpha \(node1\): also on network mynet, which the task does not ask for"],
         "no-names": [r"alpha -> the name beta: answered .*, expected isolated"]}, 1),
    "user-bridge": (
        [("node1", "docker rm -f web1"), ("node1", "docker run -d --name web1 --network web IMG sleep 1d"),
         ("node1", "docker network connect web outsider")],
        {"static-ip": [r"container web1 \(node1\): address on web 10\.10\.1\.1\d\d, expected 10\.10\.1\.10"],
         "by-name": [],   # web1's new address still answers by name: this task keeps its points
         "isolated": [r"container outsider \(node1\): also on network web",
                      r"outsider -> web1 \(10\.10\.1\.1\d\d on web\): answered .*, expected isolated"]}, 6),
    "single-host-modes": (
        [("node1", "docker rm -f sidecar web nonet"),
         ("node1", "docker run -d --name web -p 8081:80 IMG httpd -f -p 80"),
         ("node1", "docker run -d --name sidecar --network container:web IMG sleep 1d"),
         ("node1", "docker run -d --name nonet IMG sleep 1d")],
        {"published": [r"container web \(node1\): port 80/tcp published as 0\.0\.0\.0:8081, expected 8080:80"],
         "none-mode": [r"container nonet \(node1\): network mode bridge, expected none",
                       r"nonet -> web \(172\.17\.\d+\.\d+ on bridge\): answered .*, expected isolated"]}, 4),
    "macvlan": (
        [("node2", "docker rm -f m2"), ("node2", "docker network rm lan"),
         ("node2", "docker network create -d macvlan -o parent=eth1 --subnet 10.21.0.0/24 --gateway 10.21.0.254 lan"),
         ("node2", "docker run -d --name m2 --network lan --ip 10.21.0.12 IMG sleep 1d")],
        {"network": [r"network lan \(node2\): subnet 10\.21\.0\.0/24, expected 10\.20\.0\.0/24",
                     r"network lan \(node2\): gateway 10\.21\.0\.254, expected 10\.20\.0\.254"],
         "containers": [r"container m2 \(node2\): address on lan 10\.21\.0\.12, expected 10\.20\.0\.12"],
         "across-hosts": [r"m1 -> m2 \(10\.21\.0\.12 on lan\): no answer, expected reach",
                          r"m2 -> m1 \(10\.20\.0\.11 on lan\): no answer, expected reach"]}, 1),
    "overlay": (
        [("node2", "docker rm -f o2"), ("node2", "docker run -d --name o2 IMG sleep 1d")],
        {"containers": [r"container o2 \(node2\): not on network ov \(it is on bridge\)"],
         "by-name": [r"o1 -> the name o2: did not resolve or answer, expected reach",
                     r"o2 -> the name o1: did not resolve or answer, expected reach"],
         "by-address": [r"o1 -> o2: cannot probe, o2 has no address on ov"]}, 2),
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grade")
    lab = make_lab(tmp, LAB, SUBNET, {"node1": ["docker"], "node2": ["docker"]})
    lab.labctl("sandbox", "down", "-i", str(lab.inventory))
    lab.labctl("sandbox", "up", "-i", str(lab.inventory))
    yield lab
    lab.labctl("sandbox", "down", "-i", str(lab.inventory), check=False)


def reset(lab: Lab) -> None:
    """What a fresh student lab is: no container, no network of anyone's, no swarm."""
    for host in DOCKER_HOSTS:
        lab.ssh(host, "docker rm -f $(docker ps -aq) >/dev/null 2>&1; docker swarm leave --force >/dev/null 2>&1; "
                      "docker network prune -f >/dev/null; true")


def by_hand(lab: Lab, host: str, command: str) -> None:
    lab.ssh(host, command.replace("IMG", "labctl/busybox:latest"))


def solve(lab: Lab, name: str, inventory: str | None = None) -> None:
    env = dict(lab.env, INVENTORY=inventory or str(lab.inventory), LABCTL=f"{sys.executable} -m labctl.cli")
    res = subprocess.run(["sh", os.path.join(ROOT, "exercises", "solutions", f"{name}.sh")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"reference solution {name} failed:\n{res.stdout}\n{res.stderr}"


def grade(lab: Lab, tmp_path, name: str) -> tuple[int, dict, str]:  # type: ignore[no-untyped-def]
    out = tmp_path / f"{name}.json"
    res = lab.labctl("grade", "-i", str(lab.inventory), "-e", os.path.join(ROOT, "exercises", f"{name}.yaml"),
                     "--json", str(out), "--junit", str(tmp_path / f"{name}.xml"), check=False)
    assert res.returncode in (0, 1), res.stderr
    data = json.loads(out.read_text())
    suite = ET.parse(tmp_path / f"{name}.xml").getroot().find("testsuite")
    assert suite is not None and int(suite.get("tests", "0")) == len(data["tasks"])
    assert int(suite.get("failures", "-1")) == sum(not t["ok"] for t in data["tasks"]), "JUnit agrees with JSON"
    assert (res.returncode == 0) is data["ok"]
    return res.returncode, data, res.stdout


SNAPSHOT = ("docker ps -aq --no-trunc | sort | xargs -r docker inspect; docker network ls -q --no-trunc | sort | "
            "xargs -r docker network inspect; iptables-save | grep -v '^#' | sed 's/\\[[0-9:]*\\]//'; "
            "ip -o link | sed 's/ *link\\/.*//'; ip route; ls -A /var/lib/labctl 2>/dev/null")


def snapshot(lab: Lab) -> dict[str, str]:
    return {h: lab.ssh(h, SNAPSHOT).stdout for h in DOCKER_HOSTS}


@pytest.mark.parametrize("name", list(MISTAKES))
def test_reference_solution_full_marks_mistakes_cost_exactly_and_grading_changes_nothing(
        lab: Lab, tmp_path, name: str) -> None:
    reset(lab)
    solve(lab, name)
    before = snapshot(lab)
    since = {h: lab.ssh(h, "date +%s").stdout.strip() for h in DOCKER_HOSTS}
    code, data, out = grade(lab, tmp_path, name)
    until = int(time.time()) + 1
    assert code == 0 and data["points"] == data["max_points"] > 0, out
    assert f"points: {data['max_points']}/{data['max_points']} (full marks)" in out
    assert set(data["probe"]["modes"].values()) == {"fping"}
    assert snapshot(lab) == before, "grading changed something on a host"
    for h in DOCKER_HOSTS:
        events = lab.ssh(h, f"docker events --since {since[h]} --until {until} --format '{{{{.Type}}}} "
                            "{{.Action}} {{.Actor.Attributes.name}}'").stdout
        assert events.strip() == "", f"{h}: Docker saw changes while grading:\n{events}"

    commands, failing, points = MISTAKES[name]
    for host, command in commands:
        by_hand(lab, host, command)
    code, data, out = grade(lab, tmp_path, name)
    assert code == 1
    failed = {t["id"]: [f["text"] for f in t["findings"] if not f["ok"]] for t in data["tasks"] if not t["ok"]}
    assert set(failed) == {t for t, msgs in failing.items() if msgs}, failed
    for task, patterns in failing.items():
        for pattern in patterns:
            assert any(re.match(pattern, text) for text in failed[task]), \
                (task, pattern, failed[task])
    assert data["points"] == points, failed


def test_bad_exercise_exits_2_and_touches_no_host(lab: Lab, tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    with open(os.path.join(ROOT, "exercises", "user-bridge.yaml"), encoding="utf-8") as fh:
        text = fh.read().replace("subnet: 10.10.1.0/24", "subnet: 10.10.1.0/33")
    bad.write_text(text.replace("host: node1", "host: node9", 1))
    before = snapshot(lab)
    res = lab.labctl("grade", "-i", str(lab.inventory), "-e", str(bad), check=False)
    assert res.returncode == 2
    assert f"{bad}: tasks[0].networks.web.subnet" in res.stderr and "tasks[1].containers.web1.host" in res.stderr
    assert snapshot(lab) == before


def test_a_class_of_five_one_unreachable(lab: Lab, tmp_path) -> None:
    reset(lab)
    cls = tmp_path / "class"
    res = lab.labctl("sandbox", "up", "-i", str(lab.inventory), "--class", "5", "--class-dir", str(cls), timeout=600)
    roster = cls / "class.yaml"
    try:
        invs = {f"student{i}": str(cls / f"{LAB}-s{i}.yaml") for i in range(1, 6)}
        assert all(os.path.exists(p) for p in invs.values()), res.stdout
        for student in ("student1", "student2", "student4"):
            solve(lab, "user-bridge", invs[student])
        lab.labctl("ssh", "node1", "-i", invs["student2"], "--", "docker network disconnect web web2")
        for host in DOCKER_HOSTS:   # student5's hosts run, but their sshd (started by labctl, stopped by PID) does not
            lab.labctl("ssh", host, "-i", invs["student5"], "--", "kill $(cat /run/sshd.pid)")
        t0 = time.monotonic()
        res = lab.labctl("grade", "--class", str(roster), "-e", os.path.join(ROOT, "exercises", "user-bridge.yaml"),
                         "--csv", str(tmp_path / "r.csv"), "--json", str(tmp_path / "r.json"), check=False)
        took = time.monotonic() - t0
        print(f"class of 5 (one unreachable) graded in {took:.1f}s")
        assert res.returncode == 1, res.stderr
        with open(tmp_path / "r.csv", encoding="utf-8") as fh:
            rows = {r["student"]: r for r in csv.DictReader(fh)}
        assert [rows[s]["total"] for s in ("student1", "student2", "student3", "student4")] == ["10", "7", "0", "10"]
        assert rows["student5"]["total"] == "-" and rows["student5"]["status"].startswith("unreachable")
        assert rows["student2"]["dynamic-ip"] == "0" and rows["student2"]["by-name"] == "0"
        data = json.loads((tmp_path / "r.json").read_text())
        assert [s["student"] for s in data["students"]] == [f"student{i}" for i in range(1, 6)]
        assert data["students"][4]["error"] and "graded 4 of 5 student(s); not reachable: student5" in res.stdout
        slow = max(s["duration_s"] for s in data["students"][:4])
        assert took < slow + 30, "students are graded at once, the unreachable one does not hold up the others"
    finally:
        down = lab.labctl("sandbox", "down", "--class", str(roster), check=False, timeout=600)
    assert down.returncode == 0, down.stderr
    listed = lab.labctl("sandbox", "list").stdout
    assert f"{LAB}-s" not in listed
