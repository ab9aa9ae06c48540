"""`up --class` and `down --class` for real: the seed lab on every student's sandbox hosts of a class of 4 (made by
`sandbox up --class 4`), in parallel; bad input refused once for the class before anything changes; one student
whose hosts are gone is named with the cause while the others go on; `down --class` leaves nothing on any
student's hosts; the live class view (`grade --class --watch --serve`) seen in headless Chromium."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.integration.browser import CHROMIUM, Browser
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
    progress = " ".join(res.stderr.split())
    for s in STUDENTS:   # the seed lab's 12 creations; a container Docker left without an address is made again
        made = re.search(rf"{s} ok: (\d+) change\(s\) in", progress)
        repaired = progress.count(f"{s} repaired (counted in the changes): ")
        assert made and int(made.group(1)) - repaired == 12, progress
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


# ------------------------------------------------------------------ the live class view, in headless Chromium

USER_BRIDGE = str(ROOT / "exercises" / "user-bridge.yaml")
MAKE_WEB = ("docker network create --subnet 10.10.1.0/24 --gateway 10.10.1.1 --ip-range 10.10.1.128/25 "
            "-o com.docker.network.bridge.name=br-web web")
ROUND_S = 2


def start_watch(lab: Lab, roster: Path, tmp_path: Path) -> tuple[subprocess.Popen[str], str]:
    """`grade --class --watch --serve` on any free loopback port, with SIGINT as a terminal gives it; its URL."""
    out, err = tmp_path / "watch.out", tmp_path / "watch.err"
    proc = subprocess.Popen([sys.executable, "-m", "labctl.cli", "grade", "--class", str(roster), "-e", USER_BRIDGE,
                             "--watch", str(ROUND_S), "--serve", "127.0.0.1:0", "--csv", str(tmp_path / "class.csv")],
                            env=lab.env, stdout=out.open("w"), stderr=err.open("w"), stdin=subprocess.DEVNULL,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        found = re.search(r"serving the class view on (http://127\.0\.0\.1:\d+/)", err.read_text())
        if found:
            return proc, found.group(1)
        time.sleep(0.25)
    proc.kill()
    raise AssertionError(f"no URL within 90 s: {err.read_text()[-2000:]}")


def ask(url: str, method: str = "GET", host: str | None = None) -> int:
    request = urllib.request.Request(url, method=method, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as res:
            return int(res.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (make deps installs it)")
def test_live_class_view_in_headless_chromium_follows_a_hand_fix_without_reload(klass, tmp_path) -> None:  # type: ignore[no-untyped-def]
    lab, roster = klass
    proc, url = start_watch(lab, roster, tmp_path)
    browser = Browser(tmp_path / "profile")
    try:
        browser.open(url)
        students = browser.wait_for("Array.from(document.querySelectorAll('tr[data-student]'))"
                                    ".map(r => r.dataset.student)")
        assert students == STUDENTS, "the page shows every student of the class file"
        cell = "document.querySelector('tr[data-student=\"student2\"] td[data-task=\"network\"]')"
        assert browser.eval(f"{cell}.className") == "fail" and "0/3" in browser.eval(f"{cell}.innerText")
        assert "network web (node1): not found" in browser.eval(f"{cell}.innerText"), "the first finding"
        browser.eval("window.labctlTestMark = 'not reloaded'")
        on(lab, roster, 2, "node1", MAKE_WEB)
        fixed = time.monotonic()
        browser.wait_for(f"{cell}.className === 'pass' && {cell}.innerText === '3/3'", timeout=2 * ROUND_S + 10)
        print(f"the hand fix showed on the page {time.monotonic() - fixed:.1f}s after it was made")
        assert browser.eval("window.labctlTestMark") == "not reloaded", "the page changed in place"
        network = dict(browser.eval("Array.from(document.querySelectorAll('td[data-task=\"network\"]'))"
                                    ".map(c => [c.closest('tr').dataset.student, c.innerText.split('\\n')[0]])"))
        assert network["student2"] == "3/3", network
        assert all(re.fullmatch(r"0/3 for \d+(s|m\d\ds)", network[s]) for s in STUDENTS if s != "student2"), \
            "the others still fail, with how long they have failed"
        assert "3/40 points in all" in browser.text(), "the totals follow"
        browser.eval("document.querySelector('tr[data-student=\"student2\"]').click()")
        details = browser.wait_for("document.getElementById('details').innerText")
        assert "student2: 3/10 points" in details and "PASS network 3/3" in details, details
        assert all(r.startswith(url) for r in browser.requests), browser.requests
        assert any(r == url + "board.json" for r in browser.requests), "the page asks for its JSON by itself"
        assert "student2,3,0,0,0,0,3,10" in (tmp_path / "class.csv").read_text(), "the CSV follows each round"

        assert ask(url) == 200 and ask(url + "board.json") == 200 and ask(url, "HEAD") == 200
        for path in ("favicon.ico", "board.json/../etc/passwd", "index.html", "board.json?x=1", "../"):
            assert ask(url + path) == 404, path
        assert ask(url + "board.json", "POST") == 405 and ask(url, "PUT") == 405
        assert ask(url, host="attacker.example") == 421, "a name other than the server's own is refused"
    finally:
        browser.close()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        finally:
            on(lab, roster, 2, "node1", "docker network rm web")
    assert proc.returncode == 0, (tmp_path / "watch.err").read_text()[-2000:]
    assert "stopped by Ctrl-C after" in (tmp_path / "watch.out").read_text()
    port = int(url.rsplit(":", 1)[1].strip("/"))
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)
