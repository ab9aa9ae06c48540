"""`labctl grade --class --watch N`: the class regraded every N seconds, until Ctrl-C (or `--rounds`).

Rounds run start to start: a round that takes longer than N is followed at once by the next. Each round is the
same read-only `grade_class`, in a thread of its own, so Ctrl-C (SIGINT, or SIGTERM) is taken at once: the
students not yet begun are skipped, those in progress finish their read-only probes, and the server is stopped
before that wait, so its port is free at once. After every round `on_round` gets the board (to redraw the
terminal, write the files); the server, when there is one, answers with the latest board."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from labctl.executors import grade as grade_exec
from labctl.executors.remote import Hosts
from labctl.model.class_roster import Roster
from labctl.model.exercise import Exercise
from labctl.plan import watch as plan
from labctl.plan.grade import Report
from labctl.ui import Progress


@dataclass
class Watch:
    roster: Roster
    exercises: dict[str, Exercise]
    probe: str
    interval_s: float
    rounds: int | None = None                    # stop after this many rounds (None: until Ctrl-C)
    tracker: plan.Tracker = field(default_factory=plan.Tracker)
    board: dict[str, Any] = field(default_factory=dict)
    reports: list[Report] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    kept: dict[str, Hosts] = field(default_factory=dict)      # each student's connections, across rounds
    interrupted: bool = False

    def one_round(self) -> None:
        t0 = time.monotonic()
        reports = grade_exec.grade_class(self.roster, self.exercises, self.probe, Progress(quiet=True), self.stop,
                                         self.kept)
        if self.stop.is_set() and any(r.error == "stopped" for r in reports):
            return                                 # a round cut short by Ctrl-C is not shown as if it were whole
        now = time.time()
        self.tracker.update(reports, now)
        self.reports = reports
        self.board = plan.board(self.roster.name, reports, self.tracker, now, time.monotonic() - t0,
                                self.interval_s)

    def run(self, on_round: Callable[[Watch], None], on_stop: Callable[[], None] = lambda: None,
            progress: Progress | None = None) -> None:
        """Rounds until Ctrl-C, SIGTERM or `rounds`; `on_stop` runs first thing after the interrupt (the server's
        close), before the wait for the round in progress."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="labctl-round") as pool, _signals_interrupt():
            try:
                while not self.stop.is_set():
                    start = time.monotonic()
                    pool.submit(self.one_round).result()
                    on_round(self)
                    if self.rounds is not None and self.tracker.rounds >= self.rounds:
                        break
                    self.stop.wait(max(0.0, self.interval_s - (time.monotonic() - start)))
            except KeyboardInterrupt:
                self.interrupted = True
                self.stop.set()
                on_stop()
                if progress:
                    progress.step("all", "stopping: the students being graded finish their (read-only) probes")
        on_stop()
        for hosts in self.kept.values():
            hosts.close()
        self.kept.clear()


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGINT and SIGTERM end the watch as Ctrl-C does, also where the shell that started labctl in the background
    left SIGINT ignored (the main thread only; elsewhere, as it was)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
