"""What people read: every view prints host and user text literally (no emoji codes, no markup), headings never
wrap, wide matrices fold at 80 columns, NO_COLOR and pipes give plain text, --quiet keeps the verdict."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from labctl.executors.lab import Report as LabReport
from labctl.executors.trace import TraceResult
from labctl.executors.verify import Verdict
from labctl.model.exercise import load_exercise
from labctl.model.inventory import load_inventory
from labctl.plan.grade import Finding, Report, TaskResult
from labctl.plan.status import LabStatus
from labctl.plan.trace import CapturePoint, Hop, Seen
from labctl.plan.trace import Path as TracePath
from labctl.plan.verify import Check, Result
from labctl.views import console as views
from labctl.views.engines import print_engines
from labctl.views.grade import print_grade, print_roster
from labctl.views.lab import print_hosts, print_report, print_status
from labctl.views.trace import print_trace
from labctl.views.verdict import print_verdict

ROOT = Path(__file__).parents[2]
TRAPS = (":cd:", ":thumbs_up:", "[bold]", "[/]", "[red]x[/red]")
MAC = "12:71:13:cd:47:c9"
ANSI = re.compile(r"\x1b\[")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def out(view, *args, columns: int | None = None, tty: bool = False, monkeypatch=None, **kwargs) -> str:
    stream = Terminal() if tty else io.StringIO()
    console = views.make(stream)
    if columns:
        console.width = columns
    view(*args, console=console, **kwargs)
    return stream.getvalue()


def verdict_of(n: int, name: str = "c", fail: int | None = None) -> Verdict:
    results = []
    for i in range(n):
        for j in range(n):
            if i != j:
                check = Check(f"{name}{i}", "node1", f"{name}{j}", "node2", "ov", f"172.30.0.{j + 1}", "reach", "ip",
                              "both on ov :cd: [bold]")
                observed = "isolated" if fail == j and i == 0 else "reach"
                results.append(Result(check, observed, 1.0, "the FDB [red]x[/red] has :cd:" if observed != "reach"
                                      else ""))
    return Verdict("lab:cd:[bold]", results, 1.5, False, {"node1": "fping"})


def test_status_prints_names_and_errors_literally() -> None:
    status = {"lab": "lab:cd:", "hosts": [{"name": "node1", "roles": ["docker"], "engine": "debian-13",
                                           "error": "Docker said: [bold]no[/] :cd:"}],
              "networks": [{"name": "ov:cd:", "driver": "overlay", "scope": "swarm", "subnet": "172.30.0.0/16",
                            "gateway": "172.30.0.254", "vni": 4097, "hosts": ["node1"]}],
              "containers": [{"name": "c1", "host": "node1", "state": "running", "network_mode": "",
                              "addresses": {"ov": "172.30.0.2", "mac": MAC}}],
              "missing": ["containers.c9: absent on node1 [red]x[/red]"], "extra": []}
    text = out(print_status, LabStatus.from_json(status))
    for trap in (MAC, "lab:cd:", "ov:cd:", "[bold]no[/] :cd:", "[red]x[/red]"):
        assert trap in text, f"{trap!r} printed as given"
    assert "\U0001f4bf" not in text, "no emoji for :cd:"


def test_verdict_prints_causes_literally_and_folds_at_80_columns() -> None:
    text = out(print_verdict, verdict_of(12, fail=5), columns=80)
    assert "the FDB [red]x[/red] has :cd:" in text and "both on ov :cd: [bold]" in text and "lab:cd:[bold]" in text
    table_lines = [line for line in text.splitlines() if line[:1] in "┏┃┡│└━"]
    assert table_lines and all(len(line) <= 80 for line in table_lines), "every table fits 80 columns"
    assert "(columns 1 of " in text, "12 destinations do not fit: the matrix comes in groups of columns"
    cells = re.findall(r"│\s*([A-Za-z]+)\s*(?=│)", text)
    assert {"reach", "MISMATCH"} <= set(cells) and not {"MISMA", "TCH", "isola"} & set(cells), "no word is broken"
    for i in range(12):
        assert re.search(rf"[┃│] c{i} +[┃│]", text), f"c{i} whole, as a row or a column"
    heading = next(line for line in text.splitlines() if line.startswith("ov: "))
    assert heading.startswith("ov: does the row reach the column?"), "the heading is one line"


def test_a_heading_longer_than_the_terminal_is_not_wrapped_by_labctl() -> None:
    long_name = "lab-with-a-really-long-name-" * 4
    inv = load_inventory(str(ROOT / "inventories" / "sandbox.yaml"))
    text = out(print_hosts, inv, columns=60)
    assert text.splitlines()[0] == "lab sandbox (sandbox)"
    stream = io.StringIO()
    console = views.make(stream)
    console.width = 40
    views.heading(console, long_name)
    assert stream.getvalue() == long_name + "\n"


def test_trace_prints_macs_and_interfaces_literally() -> None:
    point = CapturePoint("c1-eth0", "node1", 0, "eth0", "icmp")
    path = TracePath("overlay", "c1", "c3", "172.30.0.2", "172.30.0.1", "ov", 4097,
                     [Hop("c1", "eth0 (veth)", MAC, "172.30.0.2", "leaves :cd: [bold]", "c1-eth0")], [point])
    result = TraceResult(path, 2, 2, "", [Seen(point, 2, 2, [], [], [])], ["seen :cd: at c1-eth0"], [], "swarm")
    text = out(print_trace, result)
    assert MAC in text and "leaves :cd: [bold]" in text and "proof: seen :cd: at c1-eth0" in text
    assert out(print_trace, result, quiet=True).count("\n") == 1, "--quiet: the first line only"


def test_grade_report_and_roster_print_findings_literally() -> None:
    inv = load_inventory(str(ROOT / "inventories" / "sandbox.yaml"))
    ex = load_exercise(str(ROOT / "exercises" / "user-bridge.yaml"), inv)
    results = [TaskResult(t, [Finding(i == 0, f"network web (node1): subnet :cd: [bold] {MAC}")])
               for i, t in enumerate(ex.tasks)]
    report = Report(ex, "inv:cd:.yaml", results, {}, 0.4, student="ann:cd:")
    text = out(print_grade, report)
    assert f"network web (node1): subnet :cd: [bold] {MAC}" in text and "inv:cd:.yaml" in text
    quiet = out(print_grade, report, quiet=True)
    assert quiet.startswith("points: ") and "FAIL" not in quiet
    roster = out(print_roster, "class[bold]", [report], 1.0)
    assert "class[bold]" in roster and "ann:cd:" in roster


def test_engines_and_reports_print_literally() -> None:
    rows = [{"name": "debian-13", "kind": "engine", "version": "Docker version 26.1.5+dfsg1, build a72d7cd",
             "backends": [], "swarm": True, "cached": True, "from_host": {"runc": "/usr/sbin/runc [x] :cd:"}}]
    assert "runc from /usr/sbin/runc [x] :cd:" in out(print_engines, rows, "/var/cache/:cd:")
    report = LabReport()
    report.changes += ["node1: container c1 :cd: [bold]created[/]"]
    assert "c1 :cd: [bold]created[/]" in out(print_report, "up", "lab", report, 1.0)
    assert "created" not in out(print_report, "up", "lab", report, 1.0, quiet=True), "--quiet: the summary"


@pytest.mark.parametrize("no_color, tty, coloured", [("", True, True), ("1", True, False), ("", False, False)])
def test_plain_text_for_no_color_and_for_pipes(monkeypatch, no_color, tty, coloured) -> None:
    monkeypatch.setenv("NO_COLOR", no_color)
    text = out(print_verdict, verdict_of(3, fail=1), tty=tty)
    assert bool(ANSI.search(text)) == coloured
    assert "MISMATCH" in text


def test_quiet_verify_keeps_the_verdict() -> None:
    text = out(print_verdict, verdict_of(3, fail=1), quiet=True)
    lines = text.splitlines()
    assert lines[-1].startswith("verify lab:cd:[bold]: FAILED: 5/6 checks as expected")
    assert not any(line[:1] in "┏┃│" for line in lines), "no matrices"
    assert text.count("MISMATCH") == 1, "and the mismatch it failed on"


def test_the_html_page_and_the_graph_keep_user_text_as_text() -> None:
    from labctl.views import graph, html
    page = html.to_html("lab:cd:", verdict_of(3, fail=1).results, 1.0)
    assert "lab:cd:" in page and "the FDB [red]x[/red] has :cd:" in page and "\U0001f4bf" not in page
    status = {"lab": "lab", "hosts": [{"name": "node1", "roles": ["docker"], "engine": "x :cd:", "error": None,
                                       "address": "198.18.0.12"}],
              "networks": [], "containers": [{"name": "c1", "host": "node1", "state": "running", "network_mode": "",
                                              "addresses": {"bridge": "172.17.0.2"}}]}
    topo = graph.build(LabStatus.from_json(status), None, {"node1": "198.18.0.12"})
    for text in (graph.to_dot(topo), graph.to_mermaid(topo)):
        assert "c1" in text and "172.17.0.2" in text
