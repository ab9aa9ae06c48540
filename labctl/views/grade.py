"""`labctl grade`: one student's tasks with points and findings, or a class's roster."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from labctl.executors import verify
from labctl.plan import grade as grade_plan
from labctl.views import gradebook
from labctl.views.console import heading, line, make, table


def print_grade(report: grade_plan.Report, details: bool = False, quiet: bool = False,
                console: Console | None = None) -> None:
    console = console or make()
    ex = report.exercise
    if not quiet:
        line(console, f"grade {ex.name}: {ex.title} ({report.inventory})")
        width = max((len(t.task.id) for t in report.results), default=4)
        for t in report.results:
            line(console, "  ", ("PASS", "green") if t.ok else ("FAIL", "bold red"),
                 f"  {t.task.id.ljust(width)}  {t.points}/{t.task.points}  {t.task.title}")
            for f in t.findings:
                if not f.ok or details:
                    line(console, f"        {'-' if not f.ok else '+'} {f.text}")
            if not t.ok and t.task.hint:
                line(console, f"        hint: {t.task.hint}")
    failed = sum(not t.ok for t in report.results)
    state = "full marks" if report.ok else f"{failed} of {len(report.results)} task(s) failed"
    line(console, f"points: {report.points}/{report.max_points} ({state}) in {report.duration_s:.1f}s")
    if report.unreachable:
        line(console, ("not reachable", "bold red"),
             ": " + "; ".join(f"{h}: {why}" for h, why in sorted(report.unreachable.items())))
    if report.probe_modes and not quiet:
        line(console, f"probes: {verify.describe_modes(report.probe_modes, report.probe_notes)}")


def print_roster(name: str, reports: list[grade_plan.Report], seconds: float, quiet: bool = False,
                 console: Console | None = None) -> None:
    console = console or make()
    header, rows = gradebook.roster_rows(reports)
    if not quiet:
        heading(console, f"class {name}: {reports[0].exercise.name if reports else ''} "
                         f"({len(reports)} students, {seconds:.1f}s)")
        t = table()
        for col in header:
            t.add_column(col, justify="right" if col not in ("student", "status") else "left")
        for row in rows:
            style = "red" if row[-1].startswith("unreachable") else ("green" if row[-1] == "full marks" else "")
            t.add_row(*[Text(x) for x in row], style=style)
        console.print(t)
    graded = [r for r in reports if r.error is None]
    line(console, f"graded {len(graded)} of {len(reports)} student(s)" + (
        f"; not reachable: {', '.join(r.student or '' for r in reports if r.error)}" if len(graded) < len(reports)
        else ""))
