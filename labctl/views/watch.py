"""The live class view in the terminal: the board as one rich renderable, redrawn in place by rich Live; and the
one line per round printed instead where the output is not a terminal (a log, `--serve`)."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from labctl.plan.watch import duration


def headline(board: dict[str, Any]) -> str:
    t = board["totals"]
    return (f"class {board['class']}: {board['exercise']}, round {board['round']} at {board['graded_at']} "
            f"({board['round_s']}s): {t['full_marks']} of {t['students']} at full marks, "
            f"{t['points']}/{t['max_points']} points" + (f", {t['not_graded']} not graded" if t["not_graded"] else ""))


def _first_failure(student: dict[str, Any]) -> str:
    if student["error"]:
        return f"not graded: {student['error']}"
    failed = [c for c in student["cells"] if not c["ok"]]
    return f"{failed[0]['task']}: {failed[0]['message']}" if failed else ""


def renderable(board: dict[str, Any], serving: str | None = None) -> RenderableType:
    """Students by tasks: points per task, how long a failed task has failed, the total, the first failure."""
    table = Table(show_header=True, header_style="bold", expand=False)
    table.add_column("student")
    for task in board["tasks"]:
        table.add_column(f"{task['id']} ({task['points']})", justify="right", no_wrap=True)
    table.add_column("total", justify="right")
    table.add_column("first failure", overflow="ellipsis", no_wrap=True, max_width=70)
    for s in board["students"]:
        if s["error"]:
            cells = [Text(f"- {duration(s['failing_for_s'])}", style="dim") for _ in board["tasks"]]
        else:
            cells = [Text(f"{c['points']}/{c['max_points']}", style="green") if c["ok"] else
                     Text(f"0/{c['max_points']} {duration(c['failing_for_s'])}", style="bold red")
                     for c in s["cells"]]
        table.add_row(Text(s["name"]), *cells, Text(f"{s['points']}/{s['max_points']}",
                                                     style="green" if s["ok"] else ""),
                      Text(_first_failure(s)))
    t = board["totals"]
    table.add_row(Text("passed", style="bold"), *[Text(f"{t['passed_by_task'][task['id']]}/{t['graded']}")
                                                   for task in board["tasks"]],
                  Text(f"{t['points']}/{t['max_points']}"), Text(""))
    foot = f"every {board['interval_s']:g}s; Ctrl-C stops" + (f"; serving {serving}" if serving else "")
    return Group(Text(headline(board), style="bold"), table, Text(foot, style="dim"))
