"""A different broken lab for each student, for real: a class of 4 sandbox seed labs, `break --class --random
--seed 1`; neighbours get different scenarios, each student's verify fails as that scenario says and gives no
labctl marker away, `grade -e exercises/fix-the-lab.yaml` gives full marks exactly to the student who repaired
their lab by hand, `break --undo --class` restores everyone, and a class file with `causes: hide` keeps verify
from naming the cause."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import Lab, sandbox_class

ROOT = Path(__file__).parents[2]
SEED = str(ROOT / "playbooks" / "seed-overlay.yaml")
FIX = str(ROOT / "exercises" / "fix-the-lab.yaml")
# what each scenario's verify says about the checks it breaks
SYMPTOMS = {"vxlan-blocked": "VXLAN (UDP 4789) is dropped on", "container-stopped": "is not running",
            "container-disconnected": "is not attached to", "wrong-subnet": "underlay address through br-"}


@pytest.fixture(scope="module")
def klass(tmp_path_factory):  # type: ignore[no-untyped-def]
    yield from sandbox_class(tmp_path_factory, "brk", "198.18.100.0/24", SEED, up=True)


def inventory(roster: Path, student: str) -> str:
    return str(roster.parent / f"brk-s{student.removeprefix('student')}.yaml")


def listing(lab: Lab, roster: Path) -> dict[str, str]:
    out = lab.labctl("break", "--class", str(roster), "-p", SEED, "--list").stdout
    rows = [line.split("\t", 1) for line in out.splitlines() if line.startswith("student")]
    return {s: what for s, what in rows}


def grades(lab: Lab, roster: Path, tmp: Path) -> dict[str, tuple[int, int]]:
    out = tmp / "grades.json"
    lab.labctl("grade", "--class", str(roster), "-e", FIX, "--json", str(out), check=False, timeout=600)
    data = json.loads(out.read_text())
    return {s["student"]: (s["points"], s["max_points"]) for s in data["students"]}


def test_random_faults_differ_between_neighbours_and_each_fails_as_it_says(klass, tmp_path) -> None:  # type: ignore[no-untyped-def]
    lab, roster = klass
    res = lab.labctl("break", "--class", str(roster), "-p", SEED, "--random", "--seed", "1", timeout=600)
    assert "4 of 4 student(s) ok" in res.stdout and "seed 1" in res.stdout
    assert not any(name in res.stdout for name in SYMPTOMS), "the run does not say who got what"
    got = listing(lab, roster)
    scenarios = [got[f"student{i}"].split(":")[0] for i in range(1, 5)]
    assert all(a != b for a, b in zip(scenarios, scenarios[1:], strict=False)), got
    assert all(s in SYMPTOMS for s in scenarios), got
    for i, scenario in enumerate(scenarios, start=1):
        inv = inventory(roster, f"student{i}")
        verify = lab.labctl("verify", "-i", inv, "-p", SEED, check=False, timeout=300)
        assert verify.returncode == 1, f"student{i} ({scenario}): verify passed"
        assert SYMPTOMS[scenario] in verify.stdout, f"student{i} ({scenario}):\n{verify.stdout[-1500:]}"
        assert "labctl.break" not in verify.stdout
        hidden = lab.labctl("verify", "-i", inv, "-p", SEED, "--causes", "hide", check=False, timeout=300)
        assert hidden.returncode == 1 and "likely cause" not in hidden.stdout and SYMPTOMS[scenario] not in \
            hidden.stdout
        for host in ("node1", "node2"):
            seen = lab.labctl("ssh", host, "-i", inv, "--", "iptables -S; docker network ls --format "
                              "'{{.Name}} {{.Labels}}'").stdout
            assert "labctl" not in seen.replace("labctl.lab", "").replace("labctl.spec", "") \
                .replace("labctl.recipe", ""), f"student{i} {host}: a labctl marker of the fault:\n{seen}"
    again = lab.labctl("break", "--class", str(roster), "-p", SEED, "--random", "--seed", "1", check=False)
    assert again.returncode == 1 and "already has a fault injected" in again.stdout


def test_only_the_student_who_repaired_gets_full_marks_and_undo_restores_everyone(klass, tmp_path) -> None:  # type: ignore[no-untyped-def]
    lab, roster = klass
    before = grades(lab, roster, tmp_path)
    assert all(p < m for p, m in before.values()), before
    env = dict(lab.env, INVENTORY=inventory(roster, "student2"), LABCTL=f"{sys.executable} -m labctl.cli")
    fix = subprocess.run(["sh", str(ROOT / "exercises" / "solutions" / "fix-the-lab.sh")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert fix.returncode == 0, fix.stderr
    after = grades(lab, roster, tmp_path)
    assert after["student2"][0] == after["student2"][1] > 0, after
    assert all(p < m for s, (p, m) in after.items() if s != "student2"), after
    undo = lab.labctl("break", "--class", str(roster), "-p", SEED, "--undo", timeout=600)
    assert "4 of 4 student(s) ok" in undo.stdout
    assert set(listing(lab, roster).values()) == {"no fault"}
    for i in range(1, 5):
        verify = lab.labctl("verify", "-i", inventory(roster, f"student{i}"), "-p", SEED, check=False, timeout=300)
        assert verify.returncode == 0, f"student{i} after --undo:\n{verify.stdout[-1500:]}"
    assert all(p == m for p, m in grades(lab, roster, tmp_path).values())


def test_a_class_file_with_causes_hide_keeps_verify_from_naming_the_cause(klass, tmp_path) -> None:  # type: ignore[no-untyped-def]
    lab, roster = klass
    hiding = roster.parent / "hiding.yaml"                # beside class.yaml: the same inventories
    hiding.write_text("causes: hide\n" + roster.read_text())
    lab.labctl("break", "--class", str(hiding), "-p", SEED, "container-stopped", timeout=600)
    try:
        inv = inventory(roster, "student1")
        for flags in ((), ("--causes", "show")):
            verify = lab.labctl("verify", "-i", inv, "-p", SEED, *flags, check=False, timeout=300)
            assert verify.returncode == 1, verify.stdout[-1500:]
            assert "likely cause" not in verify.stdout and SYMPTOMS["container-stopped"] not in verify.stdout, \
                f"verify {' '.join(flags)}:\n{verify.stdout[-1500:]}"
            assert "the instructor's class file says `causes: hide`" in verify.stderr
    finally:
        lab.labctl("break", "--class", str(hiding), "-p", SEED, "--undo", timeout=600)
    after = lab.labctl("verify", "-i", inventory(roster, "student1"), "-p", SEED, check=False, timeout=300)
    assert after.returncode == 0 and "causes: hide" not in after.stderr, after.stdout[-1500:]
