"""`labctl grade`, `labctl break` and `labctl list-scenarios`: exercises graded, faults injected and undone."""

from __future__ import annotations

import argparse
import json
import random
import sys
import time

from rich.live import Live

from labctl.commands.common import load, write_file
from labctl.errors import UsageError
from labctl.executors import breaks as breaks_exec
from labctl.executors import classlab, gradewatch, watchserver
from labctl.executors import grade as grade_exec
from labctl.executors.hostlock import HostLocks, holder_for
from labctl.executors.remote import Hosts
from labctl.model.class_roster import load_roster
from labctl.model.exercise import load_exercise
from labctl.model.inventory import Inventory
from labctl.model.playbook import load_playbook
from labctl.plan import breaks as breaks_plan
from labctl.plan.breaks import draw
from labctl.providers import registry
from labctl.ui import Progress
from labctl.views import gradebook, watchpage
from labctl.views import watch as watchview
from labctl.views.console import line, make
from labctl.views.grade import print_grade, print_roster


def cmd_grade(args: argparse.Namespace, progress: Progress) -> int:
    t0 = time.monotonic()
    check_watch_args(args)
    if args.watch is not None:
        return watch_class(args, progress)
    if args.roster:
        roster = load_roster(args.roster)
        # bad input in the exercise: exit 2 before any host is asked
        exercises = {s.name: load_exercise(args.exercise, s.inventory) for s in roster.students}
        progress.step("all", f"grading {len(roster.students)} student(s) of {roster.name}, "
                             f"{grade_exec.STUDENTS_AT_ONCE} at a time")
        reports = grade_exec.grade_class(roster, exercises, args.probe, progress)
        write_grades(args, reports, gradebook.class_dict(roster.name, reports, time.monotonic() - t0))
        if args.json != "-":
            print_roster(roster.name, reports, time.monotonic() - t0, args.quiet)
        return 0 if all(r.error is None for r in reports) else 1
    inv = load(args)
    ex = load_exercise(args.exercise, inv)
    with Hosts(registry.endpoints(inv)) as hosts:
        report = grade_exec.grade(inv, ex, hosts, progress, args.probe)
    write_grades(args, [report], gradebook.report_dict(report))
    if args.json != "-":
        print_grade(report, args.details, args.quiet)
    return 0 if report.ok else 1


def write_grades(args: argparse.Namespace, reports: list, data: dict) -> None:
    """The files asked for; each replaced whole (a reader never sees half of one, as during --watch)."""
    if args.json == "-":
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.json:
        write_file(args.json, json.dumps(data, indent=2) + "\n", atomic=True)
    if args.junit:
        write_file(args.junit, gradebook.to_junit(reports), atomic=True)
    if args.csv:
        write_file(args.csv, gradebook.to_csv(reports), atomic=True)


def check_watch_args(args: argparse.Namespace) -> None:
    if args.watch is None:
        if args.serve or args.rounds is not None:
            raise UsageError("--serve and --rounds go with --watch SECONDS",
                             hint="e.g. labctl grade --class CLASS.yaml -e EXERCISE --watch 10 --serve 8080")
        return
    if not args.roster:
        raise UsageError("--watch regrades a class: add --class CLASS.yaml (for one lab, run `labctl grade` again)")
    if not 1 <= args.watch <= 3600:
        raise UsageError(f"--watch {args.watch:g}: give the seconds between rounds, from 1 to 3600")
    if args.rounds is not None and args.rounds < 1:
        raise UsageError(f"--rounds {args.rounds}: give at least 1 (or leave it out to watch until Ctrl-C)")
    if args.json == "-":
        raise UsageError("--watch draws the class on the terminal: give --json a file, not '-'")


def watch_class(args: argparse.Namespace, progress: Progress) -> int:
    """grade --class --watch N [--serve ADDR:PORT]: regrade every N seconds; the page (or the terminal) shows
    the latest round; the files asked for are rewritten after each round. Exit as `grade --class` for the last
    whole round: 0 when every student could be graded."""
    address = watchserver.parse_address(args.serve) if args.serve else None
    roster = load_roster(args.roster)
    exercises = {s.name: load_exercise(args.exercise, s.inventory) for s in roster.students}
    watch = gradewatch.Watch(roster, exercises, args.probe, args.watch, args.rounds)
    console = make()
    live = Live(console=console, auto_refresh=False, transient=False) if not args.serve and console.is_terminal \
        else None
    # bound before the first round, so a port in use is said at once; it answers once there is a board to show
    server = (watchserver.BoardServer(address, lambda: watchpage.to_page(watch.board), lambda: watch.board)
              if address is not None else None)
    progress.step("all", f"watching {len(roster.students)} student(s) of {roster.name} in {args.exercise}, "
                         f"every {args.watch:g}s; Ctrl-C stops")

    def on_round(w: gradewatch.Watch) -> None:
        write_grades(args, w.reports, gradebook.class_dict(roster.name, w.reports, w.board["round_s"]))
        if live is not None:
            live.update(watchview.renderable(w.board), refresh=True)
        else:
            line(console, watchview.headline(w.board))
        if server is not None and w.tracker.rounds == 1:
            server.start()
            progress.note(f"serving the class view on {server.url} (only / and /board.json; Ctrl-C stops)")

    def on_stop() -> None:
        if server is not None:
            server.close()

    try:
        if live is not None:
            live.start()
        watch.run(on_round, on_stop, progress)
    finally:
        if live is not None:
            live.stop()
        on_stop()
    if not watch.reports:
        line(console, "stopped before the first round ended: nothing graded")
        return 1
    how = "stopped by Ctrl-C" if watch.interrupted else "done"
    line(console, f"{how} after {watch.tracker.rounds} round(s)" + ("; the server is stopped" if args.serve else ""))
    return 0 if all(r.error is None for r in watch.reports) else 1


def cmd_break(args: argparse.Namespace, progress: Progress) -> int:
    if args.roster:
        return break_class(args, progress)
    if args.random or args.list:
        raise UsageError("--random and --list are for a class: add --class CLASS.yaml")
    if bool(args.undo) == bool(args.scenario):
        raise UsageError("give a scenario to inject, or --undo (not both)",
                         hint="`labctl list-scenarios` lists the scenarios")
    if args.undo and (args.host or args.container or args.network):
        raise UsageError("--undo takes no --host, --container or --network: it reverts what the hosts recorded")
    if args.scenario and args.scenario not in breaks_plan.SCENARIOS:
        raise UsageError(f"no scenario {args.scenario!r}; scenarios: {', '.join(breaks_plan.SCENARIOS)}",
                         hint="`labctl list-scenarios` describes them")
    inv = load(args)
    pb = load_playbook(args.playbook, inv)
    t0 = time.monotonic()
    with Hosts(registry.endpoints(inv)) as hosts, \
            HostLocks(hosts, [h.name for h in inv.hosts], holder_for(pb.name, "break"), args.wait, progress):
        if args.undo:
            done = breaks_exec.undo(inv, pb, hosts, progress)
            for line in done:
                print(f"  {line}")
            print(f"break --undo {pb.name}: " + ("reverted" if done else "no fault recorded on the hosts; nothing to "
                                                                        "undo") + f" ({time.monotonic() - t0:.1f}s)")
            return 0
        inj = breaks_exec.inject(inv, pb, hosts, args.scenario, progress, args.host, args.container, args.network)
    print(f"broke {pb.name} ({time.monotonic() - t0:.1f}s): {breaks_plan.describe(inj)}")
    print(f"  undo: labctl break --undo -i {inv.source} -p {pb.source}   (`labctl down` undoes it too)")
    return 0


def break_class(args: argparse.Namespace, progress: Progress) -> int:
    """break --class: one fault per student (--random: drawn, neighbours differing), --undo for all, or --list."""
    modes = [m for m in (args.random or args.scenario, args.undo, args.list) if m]
    if len(modes) != 1:
        raise UsageError("with --class give one of: --random (or a scenario for everyone), --undo, --list")
    if args.host or args.container or args.network:
        raise UsageError("with --class, the host, container or network is drawn per student: no --host, --container "
                         "or --network")
    if args.scenario and args.scenario not in breaks_plan.SCENARIOS:
        raise UsageError(f"no scenario {args.scenario!r}; scenarios: {', '.join(breaks_plan.SCENARIOS)}")
    roster = load_roster(args.roster)
    playbooks = {s.name: load_playbook(args.playbook, s.inventory) for s in roster.students}
    t0 = time.monotonic()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    drawn = (draw.draw_scenarios([s.name for s in roster.students], seed) if args.random
             else {s.name: args.scenario for s in roster.students})
    quiet = Progress(quiet=True)

    def one(student: str, inv: Inventory) -> str:
        pb = playbooks[student]
        with Hosts(registry.endpoints(inv)) as hosts:
            if args.list:
                records = breaks_exec.read_records(inv, pb, hosts)
                first = min(records.values(), key=lambda r: r["step"]) if records else None
                return f"{first.get('scenario')}: {first.get('target')}" if first else "no fault"
            with HostLocks(hosts, [h.name for h in inv.hosts], holder_for(pb.name, "break"), args.wait, quiet):
                if args.undo:
                    done = breaks_exec.undo(inv, pb, hosts, quiet)
                    return "reverted" if done else "nothing to undo"
                breaks_exec.inject_drawn(inv, pb, hosts, drawn[student], draw.student_rng(seed, student), quiet,
                                         roster.causes)
                return "broken"

    results = classlab.run_each(roster, one, str, progress if not args.list else quiet)
    what = "list" if args.list else ("undo" if args.undo else "break")
    for student, result, error, _ in results:
        print(f"{student}\t{result if result is not None else 'FAILED: ' + error}")
    failed = [s for s, r, _, _ in results if r is None]
    tail = f"; failed: {', '.join(failed)}" if failed else ""
    if what == "break":
        tail += f"; seed {seed} (`--list` shows who got what)"
    print(f"break --class {roster.name} ({what}): {len(results) - len(failed)} of {len(results)} student(s) ok"
          f"{tail} ({time.monotonic() - t0:.1f}s)")
    return 1 if failed else 0


def cmd_list_scenarios(args: argparse.Namespace, progress: Progress) -> int:
    if args.json:
        print(json.dumps([{"name": s.name, "summary": s.summary, "symptom": s.symptom, "needs": s.needs,
                           "options": s.options} for s in breaks_plan.SCENARIOS.values()], indent=2))
        return 0
    for s in breaks_plan.SCENARIOS.values():
        print(f"{s.name}\n  does:     {s.summary}\n  verify:   {s.symptom}\n  needs:    {s.needs}"
              + (f"\n  options:  {s.options}" if s.options else ""))
    return 0
