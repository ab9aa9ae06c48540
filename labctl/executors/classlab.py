"""A playbook brought up (or taken down) on every student's hosts of a class file at once (`up --class`,
`down --class`): each student's lab under its own hosts' locks, students in parallel up to a bound, one student's
failure kept as that student's outcome without stopping the others."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from labctl.errors import HostsFailed, LabctlError
from labctl.executors.remote import failure_from
from labctl.executors.steps import Report
from labctl.model.class_roster import Roster
from labctl.model.inventory import Inventory
from labctl.model.playbook import Playbook
from labctl.ui import Progress

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


def run_class(verb: str, roster: Roster, playbooks: dict[str, Playbook],
              one: Callable[[Inventory, Playbook, Progress], Report], progress: Progress) -> list[Outcome]:
    """one(inventory, playbook, progress) for every student, in parallel; outcomes in the class file's order."""
    quiet = Progress(quiet=True)

    def student_run(name: str, inv: Inventory) -> Outcome:
        t0 = time.monotonic()
        progress.step(name, f"{verb}: {inv.name} ({len(inv.hosts)} hosts)")
        try:
            report = one(inv, playbooks[name], quiet)
            out = Outcome(name, inv.name, report, time.monotonic() - t0)
        except Exception as exc:  # noqa: BLE001 - one student's failure never stops the class
            out = Outcome(name, inv.name, None, time.monotonic() - t0, reason(name, exc))
        if out.report is None:
            progress.step(name, f"FAILED in {out.seconds:.1f}s: {out.error}")
        elif out.report.skipped:
            progress.step(name, f"incomplete in {out.seconds:.1f}s: {len(out.report.skipped)} part(s) skipped")
        else:
            progress.step(name, f"ok in {out.seconds:.1f}s: {len(out.report.changes)} change(s)")
        return out

    with ThreadPoolExecutor(max_workers=max(1, min(students_at_once(roster), len(roster.students)))) as pool:
        futures = [pool.submit(student_run, s.name, s.inventory) for s in roster.students]
        return [f.result() for f in futures]
