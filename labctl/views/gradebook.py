"""`grade` results for machines (JSON, JUnit with one testcase per task, the roster as CSV) and for people."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from typing import Any

from labctl.plan.grade import Report


def report_dict(r: Report) -> dict[str, Any]:
    """{"exercise", "title", "student", "inventory", "points", "max_points", "ok", "error", "unreachable",
    "tasks": [{"id", "title", "points", "max_points", "ok", "findings": [{"ok", "text"}]}], "probe",
    "duration_s"}."""
    return {"exercise": r.exercise.name, "title": r.exercise.title, "student": r.student, "inventory": r.inventory,
            "points": r.points, "max_points": r.max_points, "ok": r.ok, "error": r.error,
            "unreachable": r.unreachable,
            "tasks": [{"id": t.task.id, "title": t.task.title, "points": t.points, "max_points": t.task.points,
                       "ok": t.ok, "findings": [{"ok": f.ok, "text": f.text} for f in t.findings]}
                      for t in r.results],
            "probe": {"modes": r.probe_modes, "notes": r.probe_notes}, "duration_s": round(r.duration_s, 3)}


def class_dict(name: str, reports: list[Report], duration_s: float) -> dict[str, Any]:
    return {"class": name, "exercise": reports[0].exercise.name if reports else None,
            "max_points": reports[0].max_points if reports else 0, "duration_s": round(duration_s, 3),
            "students": [report_dict(r) for r in reports]}


def to_junit(reports: list[Report]) -> str:
    """One testsuite per student (one in all without a class), one testcase per task; a student who could not be
    graded has every task as an error."""
    root = ET.Element("testsuites")
    for r in reports:
        name = f"labctl grade {r.exercise.name}" + (f" {r.student}" if r.student else "")
        failed = sum(not t.ok for t in r.results)
        suite = ET.SubElement(root, "testsuite", name=name, tests=str(len(r.results)),
                              failures="0" if r.error else str(failed), errors=str(len(r.results)) if r.error
                              else "0", time=f"{r.duration_s:.3f}")
        for t in r.results:
            case = ET.SubElement(suite, "testcase", classname=f"{r.exercise.name}.{r.student or 'lab'}",
                                 name=f"{t.task.id}: {t.task.title} ({t.task.points} points)")
            if r.error:
                ET.SubElement(case, "error", message=f"not graded: {r.error}")
            elif not t.ok:
                failure = ET.SubElement(case, "failure", message=f"0/{t.task.points} points")
                failure.text = "\n".join(f.text for f in t.findings if not f.ok)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def roster_rows(reports: list[Report]) -> tuple[list[str], list[list[str]]]:
    """The class as a table: a row per student, a column per task (points earned), total and status."""
    tasks = [t.task for t in reports[0].results] if reports else []
    header = ["student", *[t.id for t in tasks], "total", "max", "status"]
    rows = []
    for r in reports:
        cells = ["-" if r.error else str(t.points) for t in r.results]
        status = f"unreachable: {r.error}" if r.error else ("full marks" if r.ok else
                                                            f"{sum(not t.ok for t in r.results)} task(s) failed")
        rows.append([r.student or "", *cells, "-" if r.error else str(r.points), str(r.max_points), status])
    return header, rows


def to_csv(reports: list[Report]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header, rows = roster_rows(reports)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()
