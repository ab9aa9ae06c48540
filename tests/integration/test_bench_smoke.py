"""The benchmark harness still works end to end on its smallest size (figures are printed, never asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_smallest_size_runs(tmp_path) -> None:
    env = dict(os.environ, LABCTL_STATE_DIR=str(tmp_path / "state"), PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--sizes", "2x1", "--no-write",
                          "--baseline-max-pairs", "2", "--lab", "bsmoke", "--subnet", "198.18.83.0/24", "--no-seed"],
                         env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stdout + res.stderr
    row = next(line for line in res.stdout.splitlines() if line.startswith("| 2x1 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # containers, pairs, checks: by IP and by name each way, and one whole packet each way across the overlay
    assert cells[1] == "2" and cells[2] == "2" and cells[3] == "6", row
    assert not cells[5].endswith("!") and not cells[6].endswith("!"), "warm up changed nothing, verify passed"
    assert cells[7] == "fping", "sandbox hosts have fping: verify probes from the host"
    assert "bsmoke" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def test_class_bench_runs_for_two_students(tmp_path) -> None:
    """bench/classroom.py end to end for 2 students (the class of 30 only runs in `make bench`)."""
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "classroom.py"), "--students", "2", "--no-write",
                          "--work", str(tmp_path / "work"), "--lab", "bcsmoke", "--subnet", "198.18.120.0/24"],
                         capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "| memory for all 2 < 12 GB |" in res.stdout and "2 of 2 at full marks" in res.stdout, res.stdout
    assert "1 of 2 at full marks" in res.stdout, "the broken student's round shows the fault"
    assert "bcsmoke" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
