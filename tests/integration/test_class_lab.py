"""`up --class` and `down --class` for real: the seed lab on every student's sandbox hosts of a class of 4 (made by
`sandbox up --class 4`), in parallel; bad input refused once for the class before anything changes; one student
whose hosts are gone is named with the cause while the others go on; `down --class` leaves nothing on any
student's hosts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import Lab, sandbox_class

ROOT = Path(__file__).parents[2]
SEED = str(ROOT / "playbooks" / "seed-overlay.yaml")
STUDENTS = [f"student{i}" for i in range(1, 5)]


@pytest.fixture(scope="module")
def klass(tmp_path_factory):  # type: ignore[no-untyped-def]
    yield from sandbox_class(tmp_path_factory, "klass", "198.18.62.0/24", SEED, up=False)


def student_inventory(roster: Path, i: int) -> str:
    return str(roster.parent / f"klass-s{i}.yaml")


def on(lab: Lab, roster: Path, i: int, host: str, command: str) -> str:
    res = subprocess.run([sys.executable, "-m", "labctl.cli", "ssh", host, "-i", student_inventory(roster, i), "--",
                          command], env=lab.env, capture_output=True, text=True, timeout=120)
    return res.stdout


def test_bad_input_is_refused_once_for_the_class_before_anything_changes(klass, tmp_path) -> None:  # type: ignore[no-untyped-def]
    lab, roster = klass
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nnetworks:\n  b: {driver: bridge, subnet: 10.96.0.0/33, hosts: [node1]}\n")
    res = lab.labctl("up", "--class", str(roster), "-p", str(bad), check=False)
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("networks.b.subnet") == 1, "one problem, reported once for the whole class"
    assert all(on(lab, roster, i, "node1", "docker network ls -q --filter label=labctl.lab").strip() == ""
               for i in range(1, 5))
    both = lab.labctl("up", "--class", str(roster), "-i", str(lab.inventory), "-p", SEED, check=False)
    assert both.returncode == 2 and "--class and --inventory exclude each other" in both.stderr


def test_up_brings_every_student_lab_up_and_again_changes_nothing(klass) -> None:  # type: ignore[no-untyped-def]
    lab, roster = klass
    res = lab.labctl("up", "--class", str(roster), "-p", SEED, timeout=900)
    assert "up --class class: 4 of 4 student(s) ok" in res.stdout, res.stdout
    progress = res.stderr
    assert all(f"{s} ok: 12 change(s) in" in " ".join(progress.split()) for s in STUDENTS), progress
    assert f"{os.cpu_count() or 1} at a time" in progress
    for i in range(1, 5):
        verify = lab.labctl("verify", "-i", student_inventory(roster, i), "-p", SEED, check=False)
        assert verify.returncode == 0, f"student{i}: {verify.stdout[-800:]}"
    again = lab.labctl("up", "--class", str(roster), "-p", SEED, timeout=900)
    rows = [line for line in again.stdout.splitlines() if "student" in line and "│" in line]
    assert len(rows) == 4 and all("│ ok " in r and "│ 0 " in r for r in rows), again.stdout


def test_a_student_whose_hosts_are_gone_is_named_and_the_others_go_on(klass) -> None:  # type: ignore[no-untyped-def]
    lab, roster = klass
    lab.labctl("sandbox", "down", "-i", student_inventory(roster, 2))
    res = lab.labctl("up", "--class", str(roster), "-p", SEED, check=False, timeout=900)
    assert res.returncode == 1
    assert "3 of 4 student(s) ok; failed: student2" in res.stdout
    assert "student2" in res.stderr and "the hosts are not up" in res.stderr, res.stderr
    lab.labctl("sandbox", "up", "-i", str(lab.inventory), "--class", "4", "--class-dir", str(roster.parent))
    assert "4 of 4 student(s) ok" in lab.labctl("up", "--class", str(roster), "-p", SEED, timeout=900).stdout


def test_down_leaves_nothing_on_any_students_hosts(klass) -> None:  # type: ignore[no-untyped-def]
    lab, roster = klass
    res = lab.labctl("down", "--class", str(roster), "-p", SEED, timeout=900)
    assert "down --class class: 4 of 4 student(s) ok" in res.stdout
    for i in range(1, 5):
        for host in ("node1", "node2"):
            left = on(lab, roster, i, host, "docker ps -aq; docker network ls --format '{{.Name}}' | "
                                            "grep -vx 'bridge\\|host\\|none'; ls /etc/docker/daemon.json 2>/dev/null")
            assert left.strip() == "", f"student{i} {host}: {left}"
        assert on(lab, roster, i, "store", "ls -A /var/lib/labctl | grep -v locks; "
                                           "start-stop-daemon --status --pidfile /run/labctl/etcd.pid && echo etcd")\
            .strip() == "", f"student{i}: the store is left"
    again = lab.labctl("down", "--class", str(roster), "-p", SEED, timeout=900)
    rows = [line for line in again.stdout.splitlines() if "student" in line and "│" in line]
    assert len(rows) == 4 and all("│ 0 " in r for r in rows), again.stdout
