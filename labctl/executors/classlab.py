"""A playbook brought up (or taken down) on every student's hosts of a class file at once (`up --class`,
`down --class`): each student's lab under its own hosts' locks, students in parallel up to a bound, one student's
failure kept as that student's outcome without stopping the others."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from labctl.errors import HostsFailed, LabctlError
from labctl.executors.remote import failure_from
from labctl.executors.steps import Report
from labctl.model.class_roster import Roster
from labctl.model.inventory import Inventory
from labctl.model.playbook import Playbook
from labctl.ui import Progress

T = TypeVar("T")
OTHER_STUDENTS_AT_ONCE = 8   # students whose hosts are machines of their own: their work does not share our cores


@dataclass
class Outcome:
    student: str
    lab: str
    report: Report | None      # None: the student's run failed (see error)
    seconds: float
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.report is not None and not self.report.skipped


def students_at_once(roster: Roster) -> int:
    """Sandbox student labs all run on this machine: as many at once as it has cores (dockerd starts and container
    creation are CPU-bound here); students on machines of their own, more."""
    if all(s.inventory.provider == "sandbox" for s in roster.students):
        return max(1, os.cpu_count() or 1)
    return OTHER_STUDENTS_AT_ONCE


def reason(student: str, exc: BaseException) -> str:
    """One line that says why a student's run failed: the failing host and the tail of its error."""
    if isinstance(exc, HostsFailed):
        first = exc.failures[0]
        tail = first.stderr_tail.strip().splitlines()
        return f"{exc.step}: [{first.host}] {tail[-1] if tail else first.command}" + (
            f" (and {len(exc.failures) - 1} more host(s))" if len(exc.failures) > 1 else "")
    if isinstance(exc, LabctlError):
        return exc.message.splitlines()[0]
    return str(failure_from(student, exc)).splitlines()[-1].strip()


def run_each(roster: Roster, fn: Callable[[str, Inventory], T],
             describe: Callable[[T], str], progress: Progress) -> list[tuple[str, T | None, str, float]]:
    """fn(student, inventory) for every student in parallel (students_at_once): per student in the class file's
    order, (student, result or None, the reason it failed, seconds); one progress line per student as it ends."""

    def one(name: str, inv: Inventory) -> tuple[str, T | None, str, float]:
        t0 = time.monotonic()
        try:
            result = fn(name, inv)
        except Exception as exc:  # noqa: BLE001 - one student's failure never stops the class
            why = reason(name, exc)
            progress.step(name, f"FAILED in {time.monotonic() - t0:.1f}s: {why}")
            return name, None, why, time.monotonic() - t0
        progress.step(name, f"{describe(result)} in {time.monotonic() - t0:.1f}s")
        return name, result, "", time.monotonic() - t0

    with ThreadPoolExecutor(max_workers=max(1, min(students_at_once(roster), len(roster.students)))) as pool:
        futures = [pool.submit(one, s.name, s.inventory) for s in roster.students]
        return [f.result() for f in futures]


def run_class(verb: str, roster: Roster, playbooks: dict[str, Playbook],
              one: Callable[[Inventory, Playbook, Progress], Report], progress: Progress) -> list[Outcome]:
    """one(inventory, playbook, progress) for every student, in parallel; outcomes in the class file's order."""
    quiet = Progress(quiet=True)
    labs = {s.name: s.inventory.name for s in roster.students}

    def student_run(name: str, inv: Inventory) -> Report:
        progress.step(name, f"{verb}: {inv.name} ({len(inv.hosts)} hosts)")
        report = one(inv, playbooks[name], quiet)
        for what in report.repairs:   # the student's own progress is quiet; a repair is worth a line of its own
            progress.step(name, f"repaired (counted in the changes): {what}")
        return report

    def describe(report: Report) -> str:
        if report.skipped:
            return f"incomplete: {len(report.skipped)} part(s) skipped"
        return f"ok: {len(report.changes)} change(s)"

    return [Outcome(name, labs[name], report, seconds, error)
            for name, report, error, seconds in run_each(roster, student_run, describe, progress)]
