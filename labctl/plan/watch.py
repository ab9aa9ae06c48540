"""The live class view's state, pure: rounds of class reports in, one board out (`labctl grade --class --watch`).

A board is what the page, its JSON and the terminal all show: students by tasks with points, for a failed task the
first failing finding and since when it has failed, the class's totals and when it was last graded. Only
"failing since" needs memory across rounds; `Tracker` keeps it, keyed by student and task, and forgets a failure
as soon as the task passes (a task that fails again starts a new failure)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from labctl.plan.grade import Report, TaskResult

NOT_GRADED = "*"        # the task key of a student who could not be graded at all


def first_failure(result: TaskResult) -> str:
    """What an instructor reads first: the first finding that does not hold (a task with no finding at all
    earned nothing because nothing could be checked)."""
    failed = [f.text for f in result.findings if not f.ok]
    return failed[0] if failed else "nothing could be checked for this task"


@dataclass
class Tracker:
    """Since when each (student, task) has failed without a break, in the clock's seconds."""
    since: dict[tuple[str, str], float] = field(default_factory=dict)
    rounds: int = 0

    def update(self, reports: list[Report], now: float) -> None:
        failing: set[tuple[str, str]] = set()
        for r in reports:
            student = r.student or ""
            if r.error:
                failing.add((student, NOT_GRADED))
                continue
            failing |= {(student, t.task.id) for t in r.results if not t.ok}
        self.since = {key: self.since.get(key, now) for key in failing}
        self.rounds += 1


def _cell(r: Report, t: TaskResult, since: dict[tuple[str, str], float], now: float) -> dict[str, Any]:
    cell: dict[str, Any] = {"task": t.task.id, "points": t.points, "max_points": t.task.points, "ok": t.ok,
                            "message": None, "failing_since": None, "failing_for_s": None}
    if not t.ok:
        start = since.get((r.student or "", t.task.id), now)
        cell.update(message=first_failure(t), failing_since=iso(start), failing_for_s=round(now - start, 1))
    return cell


def _student(r: Report, since: dict[tuple[str, str], float], now: float) -> dict[str, Any]:
    row: dict[str, Any] = {"name": r.student or "", "points": 0 if r.error else r.points,
                           "max_points": r.max_points, "ok": r.ok, "error": r.error,
                           "failing_since": None, "failing_for_s": None, "duration_s": round(r.duration_s, 2),
                           "cells": [], "unreachable": dict(sorted(r.unreachable.items())),
                           "tasks": [{"id": t.task.id, "title": t.task.title, "points": t.points,
                                      "max_points": t.task.points, "ok": t.ok, "hint": t.task.hint,
                                      "findings": [{"ok": f.ok, "text": f.text} for f in t.findings]}
                                     for t in r.results]}
    if r.error:
        start = since.get((r.student or "", NOT_GRADED), now)
        row.update(failing_since=iso(start), failing_for_s=round(now - start, 1))
        return row
    row["cells"] = [_cell(r, t, since, now) for t in r.results]
    failing = [c["failing_for_s"] for c in row["cells"] if c["failing_for_s"] is not None]
    if failing:
        row["failing_for_s"] = max(failing)
        row["failing_since"] = iso(now - max(failing))
    return row


def board(class_name: str, reports: list[Report], tracker: Tracker, now: float, round_s: float,
          interval_s: float) -> dict[str, Any]:
    """The whole view as one JSON-ready mapping; `now` is the wall clock at the end of the round."""
    exercise = reports[0].exercise if reports else None
    tasks = [{"id": t.id, "title": t.title, "points": t.points} for t in (exercise.tasks if exercise else ())]
    graded = [r for r in reports if r.error is None]
    passed = {t["id"]: sum(1 for r in graded for res in r.results if res.task.id == t["id"] and res.ok)
              for t in tasks}
    totals = {"students": len(reports), "graded": len(graded), "not_graded": len(reports) - len(graded),
              "full_marks": sum(1 for r in reports if r.ok),
              "points": sum(r.points for r in graded), "max_points": sum(r.max_points for r in reports),
              "passed_by_task": passed}
    return {"class": class_name, "exercise": exercise.name if exercise else None,
            "title": exercise.title if exercise else None, "tasks": tasks, "round": tracker.rounds,
            "graded_at": iso(now), "round_s": round(round_s, 2), "interval_s": interval_s, "totals": totals,
            "students": [_student(r, tracker.since, now) for r in reports]}


def iso(t: float) -> str:
    """UTC, to the second, as the page and the files show it."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def duration(seconds: float | None) -> str:
    """12s, 4m05s, 1h02m: how long a task has failed, short enough for a table cell."""
    if seconds is None:
        return ""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
