"""The live class view without hosts: how long a task has failed across rounds, the board's totals, the page
(self-contained, user text never read as markup), the terminal view, and the server on loopback answering only
its page and JSON, then gone. Real hosts and a real browser: tests/integration/test_class_lab.py."""

from __future__ import annotations

import json
import re
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from labctl.errors import UsageError
from labctl.executors.watchserver import BoardServer, parse_address
from labctl.plan import grade as g
from labctl.plan import watch
from labctl.views import watch as watchview
from labctl.views.console import make
from labctl.views.watchpage import poll_ms, to_page
from tests.unit.test_grade_plan import captured, exercise, reports, run

ROOT = Path(__file__).parents[2]


def test_a_failure_keeps_its_start_across_rounds_and_is_forgotten_once_the_task_passes() -> None:
    ex = exercise("user-bridge")
    full, _ = run(ex, captured())
    broken_objects = captured()
    broken_objects["node1"].containers["web2"]["State"]["Status"] = "exited"
    broken, _ = run(ex, broken_objects)
    t = watch.Tracker()

    def at(results: list[g.TaskResult], now: float) -> dict:
        t.update([g.Report(ex, "a.yaml", results, {}, 1.0, student="alice")], now)
        return {c["task"]: c["failing_for_s"] for c in watch.board("c", [g.Report(ex, "a.yaml", results, {}, 1.0,
                                                                                   student="alice")],
                                                                    t, now, 1.0, 5)["students"][0]["cells"]}

    first = at(broken, 100.0)
    failing = {task for task, s in first.items() if s is not None}
    assert failing and "network" not in failing and all(first[x] == 0 for x in failing)
    assert all(v == 25.0 for k, v in at(broken, 125.0).items() if k in failing), "the start is kept"
    assert all(v is None for v in at(full, 130.0).values()), "passed: nothing fails"
    again = at(broken, 140.0)
    assert all(again[x] == 0 for x in failing), "failing again starts a new failure"
    assert t.rounds == 4


def test_board_totals_first_failures_and_a_student_not_graded() -> None:
    rs = reports()
    t = watch.Tracker()
    t.update(rs, 1000.0)
    b = watch.board("net101", rs, t, 1010.0, 2.5, 10)
    assert [s["name"] for s in b["students"]] == ["alice", "bob", "carol"]
    assert b["totals"] == {"students": 3, "graded": 2, "not_graded": 1, "full_marks": 1,
                           "points": rs[0].points + rs[1].points, "max_points": 30,
                           "passed_by_task": b["totals"]["passed_by_task"]}
    assert b["totals"]["passed_by_task"]["network"] == 2
    bob = b["students"][1]
    failed = [c for c in bob["cells"] if not c["ok"]]
    assert failed and all(c["message"] and c["failing_for_s"] == 10.0 for c in failed)
    assert failed[0]["message"] == next(f.text for r in rs[1].results if not r.ok for f in r.findings if not f.ok)
    carol = b["students"][2]
    assert carol["error"] == "node1: connection refused" and carol["points"] == 0 and carol["cells"] == []
    assert carol["failing_for_s"] == 10.0 and b["graded_at"] == "1970-01-01T00:16:50Z"
    json.dumps(b)                                     # all of it is JSON


def test_page_is_self_contained_and_reads_no_user_text_as_markup() -> None:
    rs = reports()
    rs[1].results[0].findings.insert(0, g.Finding(False, "</script><script>alert(1)</script><img src=x>"))
    t = watch.Tracker()
    t.update(rs, 0)
    page = to_page(watch.board("c", rs, t, 1.0, 1.0, 10))
    assert "</script><script>alert" not in page and "\\u003c/script>" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "nothing fetched from outside"
    assert "innerHTML" not in page and "textContent" in page
    assert 'fetch("board.json"' in page and "setInterval(refresh, 5000)" in page
    assert poll_ms(1) == 1000 and poll_ms(4) == 2000 and poll_ms(600) == 5000


def test_terminal_view_shows_points_how_long_and_the_first_failure() -> None:
    rs = reports()
    t = watch.Tracker()
    t.update(rs, 0)
    b = watch.board("net101", rs, t, 125.0, 1.0, 10)
    console = make()
    with console.capture() as cap:
        console.print(watchview.renderable(b))
    text = cap.get()
    assert "round 1" in text and "1 of 3 at full marks" in text and "1 not graded" in text
    assert "2m05s" in text and "not graded: node1: connection refused" in text
    assert watch.duration(59) == "59s" and watch.duration(3725) == "1h02m"


def test_serve_addresses() -> None:
    assert parse_address("8080") == ("127.0.0.1", 8080)
    assert parse_address("0.0.0.0:80") == ("0.0.0.0", 80)
    assert parse_address("[::1]:9000") == ("::1", 9000)
    assert parse_address("localhost:0") == ("127.0.0.1", 0)
    for bad in ("host.example:80", "127.0.0.1:http", "127.0.0.1:70000", ""):
        with pytest.raises(UsageError):
            parse_address(bad)


def status(url: str, method: str = "GET", host: str | None = None) -> tuple[int, str, dict]:
    req = urllib.request.Request(url, method=method, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as res:
            return res.status, res.read().decode(), dict(res.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, "", dict(exc.headers)


def test_server_answers_only_its_page_and_json_on_loopback_and_is_gone_when_closed() -> None:
    board = {"round": 1}
    server = BoardServer(("127.0.0.1", 0), lambda: "<p>page</p>", lambda: board).start()
    try:
        assert server.url.startswith("http://127.0.0.1:")
        code, body, headers = status(server.url)
        assert code == 200 and body == "<p>page</p>" and "default-src 'none'" in headers["Content-Security-Policy"]
        board["round"] = 2
        assert json.loads(status(server.url + "board.json")[1]) == {"round": 2}, "each answer is the latest"
        for path in ("x", "board.json?y", "etc/passwd", "board.json/"):
            assert status(server.url + path)[0] == 404, path
        assert status(server.url, "POST")[0] == 405 and status(server.url, "DELETE")[0] == 405
        assert status(server.url, host="rebind.example:80")[0] == 421
        assert status(server.url, host="10.1.2.3:8080")[0] == 200, "an address is answered (a classroom screen)"
        assert status(server.url, host="[::1]:8080")[0] == 200 and status(server.url, host="localhost")[0] == 200
        assert status(server.url, host="127.0.0.1.nip.io")[0] == 421
    finally:
        server.close()
    server.close()                                   # a second close does nothing
    port = int(server.url.rsplit(":", 1)[1].strip("/"))
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


class FakeHosts:
    made: list[FakeHosts] = []

    def __init__(self, endpoints: object) -> None:
        self.closed = False
        FakeHosts.made.append(self)

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> FakeHosts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def test_watch_keeps_connections_and_grades_again_over_new_ones_after_trouble(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from labctl.executors import grade as grade_exec

    ex = exercise("user-bridge")
    inv = None                  # the fakes never look at the inventory
    outcomes: list[object] = []

    def fake_grade(inv, ex, hosts, progress, probe, student):  # type: ignore[no-untyped-def]
        what = outcomes.pop(0)
        if isinstance(what, Exception):
            raise what
        return g.Report(ex, "a.yaml", g.grade(ex), dict(what), 0.1, student=student)  # type: ignore[call-overload]

    FakeHosts.made = []
    monkeypatch.setattr(grade_exec, "Hosts", FakeHosts)
    monkeypatch.setattr(grade_exec, "grade", fake_grade)
    monkeypatch.setattr(grade_exec.registry, "endpoints", lambda inv: [])
    kept: dict = {}
    outcomes[:] = [{}]
    assert grade_exec._grade_over(kept, "alice", inv, ex, "auto", None).unreachable == {}  # type: ignore[arg-type]
    first = kept["alice"]
    outcomes[:] = [{}]
    grade_exec._grade_over(kept, "alice", inv, ex, "auto", None)  # type: ignore[arg-type]
    assert kept["alice"] is first and len(FakeHosts.made) == 1, "the next round reuses the connections"
    outcomes[:] = [OSError("Socket is closed"), {}]
    assert grade_exec._grade_over(kept, "alice", inv, ex, "auto", None).unreachable == {}  # type: ignore[arg-type]
    assert first.closed and kept["alice"] is FakeHosts.made[-1] and len(FakeHosts.made) == 2, "graded again anew"
    outcomes[:] = [{"node1": "connection reset"}, {"node1": "connection refused"}]
    report = grade_exec._grade_over(kept, "alice", inv, ex, "auto", None)  # type: ignore[arg-type]
    assert report.unreachable == {"node1": "connection refused"}, "the fresh attempt's word is the report"
    assert "alice" not in kept and len(FakeHosts.made) == 3 and all(h.closed for h in FakeHosts.made)
    outcomes[:] = [OSError("no route")]
    with pytest.raises(OSError):
        grade_exec._grade_over(kept, "alice", inv, ex, "auto", None)  # type: ignore[arg-type]
    assert "alice" not in kept, "fresh connections that fail are not kept"


def test_watch_arguments_are_checked_before_any_host(capsys: pytest.CaptureFixture, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from labctl import cli

    ex = "exercises/fix-the-lab.yaml"
    (tmp_path / "a.yaml").write_text((ROOT / "inventories" / "sandbox.yaml").read_text())
    roster = tmp_path / "class.yaml"
    roster.write_text("students:\n  alice: a.yaml\n")
    cases = {("grade", "-e", ex, "--serve", "8080"): "--serve and --rounds go with --watch SECONDS",
             ("grade", "-e", ex, "--watch", "5"): "--watch regrades a class: add --class",
             ("grade", "--class", str(roster), "-e", ex, "--watch", "0.5"): "from 1 to 3600",
             ("grade", "--class", str(roster), "-e", ex, "--watch", "5", "--rounds", "0"): "give at least 1",
             ("grade", "--class", str(roster), "-e", ex, "--watch", "5", "--json", "-"): "give --json a file",
             ("grade", "--class", str(roster), "-e", ex, "--watch", "5", "--serve", "web.example:80"):
                 "is not an IP address"}
    for args, message in cases.items():
        assert cli.main(list(args)) == 2, args
        assert message in capsys.readouterr().err, (args, message)
