"""`grade` on the hosts: read every network and container (made by hand or not), probe the exercise's
reachability checks with verify's probes, and total the points. Read-only: nothing is created, changed or
removed on a host (the fping helper is uploaded to labctl's private directory and removed in the same command,
as verify does).

A class is graded student by student in parallel, each over its own SSH connections; a student whose hosts cannot
be reached is reported as such and does not hold up the others."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from fabric import Connection

from labctl.errors import HostsFailed
from labctl.executors.facts import ask
from labctl.executors.remote import Hosts, failure_from
from labctl.executors.verify import probe_modes, run_probes, underlay_facts
from labctl.facts import Answers
from labctl.model.class_roster import Roster
from labctl.model.exercise import Exercise
from labctl.model.inventory import Inventory
from labctl.plan import grade as plan
from labctl.plan.verify import Facts
from labctl.providers import registry
from labctl.ui import Progress

STUDENTS_AT_ONCE = 8


def gather(inv: Inventory, hosts: Hosts, progress: Progress) -> tuple[dict[str, Answers], dict[str, str]]:
    """Every docker host's objects, underlay and probe tools (one round trip each); hosts that cannot be asked,
    with why."""
    names = [h.name for h in inv.docker_hosts]
    facts = [*plan.object_facts(), *underlay_facts(inv)]

    def one(name: str, conn: Connection) -> Answers:
        progress.step(name, "reading networks and containers (every one, labelled or not)")
        return ask(conn, name, facts, warn=False)

    try:
        return hosts.each(one, names, step="read objects"), {}
    except HostsFailed as exc:
        return dict(exc.results), {f.host: f.stderr_tail.strip().splitlines()[-1] if f.stderr_tail.strip() else
                                   f"exit {f.exit_code}" for f in exc.failures}


def grade(inv: Inventory, ex: Exercise, hosts: Hosts, progress: Progress, probe: str = "auto",
          student: str | None = None) -> plan.Report:
    t0 = time.monotonic()
    answers, unreachable = gather(inv, hosts, progress)
    address, tools = underlay_facts(inv)
    objects = {h: plan.objects_from(a) for h, a in answers.items()}
    down = {h: "dockerd does not answer" for h, o in objects.items() if not o.engine}
    unreachable.update(down)
    objects = {h: o for h, o in objects.items() if h not in down}
    underlay = {h: answers[h][address] for h in objects}
    modes, notes = probe_modes(probe, {h: answers[h][tools] for h in objects})
    match = plan.match_objects(ex, objects)
    todo, cannot = plan.probes(ex, objects, match, {h: u.address for h, u in underlay.items() if u.address})
    found = plan.object_findings(ex, objects, match)
    state = plan.probe_state(ex, objects, match)
    reach: dict[str, list[plan.Finding]] = {}
    if todo:
        progress.step("all", f"probing {len(todo)} reachability check(s)")
        checks = [p.check for p in todo]
        probed, _ = run_probes(hosts, checks, Facts(state=state, addresses={}, host_addresses={}), progress,
                               unreachable, modes)
        reach = plan.probe_findings(list(zip(todo, probed, strict=True)))
    results = plan.grade(ex, plan.unreachable_findings(ex, unreachable), found, cannot, reach)
    return plan.Report(ex, inv.source, results, unreachable, time.monotonic() - t0, modes, notes, student)


def grade_class(roster: Roster, exercises: dict[str, Exercise], probe: str, progress: Progress,
                stop: threading.Event | None = None, kept: dict[str, Hosts] | None = None) -> list[plan.Report]:
    """Every student at once (STUDENTS_AT_ONCE at a time), each against its own inventory; the reports in the
    roster's order. A student whose hosts cannot be reached gets a report with `error` set. `exercises`: the
    exercise as validated against each student's inventory. Once `stop` is set, students not yet begun are not
    graded (their report says so) and the round ends as soon as those in progress are done.

    `kept` (grade --watch): each student's connections, kept open from one round to the next, which saves the SSH
    handshakes (about 12% of a round's CPU here, docs/benchmarks-class.md); a student whose kept connections
    meet any trouble is graded again at once over new ones, so a host that restarted between rounds costs no
    round."""
    quiet = Progress(quiet=True)

    def one(student: str, inv: Inventory) -> plan.Report:
        t0 = time.monotonic()
        ex = exercises[student]
        if stop is not None and stop.is_set():
            return plan.Report(ex, inv.source, plan.grade(ex), {}, 0.0, student=student, error="stopped")
        try:
            report = _grade_over(kept, student, inv, ex, probe, quiet)
        except Exception as exc:  # noqa: BLE001 - one student's failure never stops the class
            report = plan.Report(ex, inv.source, plan.grade(ex), {}, time.monotonic() - t0, student=student,
                            error=str(failure_from(student, exc)).splitlines()[-1].strip())
        if len(report.unreachable) == len(inv.docker_hosts):
            report.error = "no docker host could be reached: " + "; ".join(
                f"{h}: {why}" for h, why in sorted(report.unreachable.items()))
        state = (f"UNREACHABLE ({report.error})" if report.error else
                 f"{report.points}/{report.max_points} points")
        progress.step(student, f"{state} in {report.duration_s:.1f}s")
        return report

    with ThreadPoolExecutor(max_workers=max(1, min(STUDENTS_AT_ONCE, len(roster.students)))) as pool:
        futures = [pool.submit(one, s.name, s.inventory) for s in roster.students]
        return [f.result() for f in futures]


def _grade_over(kept: dict[str, Hosts] | None, student: str, inv: Inventory, ex: Exercise, probe: str,
                progress: Progress) -> plan.Report:
    """One student, over new connections closed after, or over the kept ones (see grade_class)."""
    if kept is None:
        with Hosts(registry.endpoints(inv)) as hosts:
            return grade(inv, ex, hosts, progress, probe, student)
    reused = student in kept
    if not reused:
        kept[student] = Hosts(registry.endpoints(inv))
    hosts = kept[student]
    try:
        report = grade(inv, ex, hosts, progress, probe, student)
    except Exception:
        kept.pop(student).close()
        if not reused:
            raise
        return _grade_over(kept, student, inv, ex, probe, progress)
    if report.unreachable:
        kept.pop(student).close()
        if reused:
            return _grade_over(kept, student, inv, ex, probe, progress)
    return report
