"""The class runner's decisions without hosts: how many students at once, and the one line of why a student failed."""

from __future__ import annotations

import io
import os

from labctl.errors import HostFailure, HostsFailed, LabctlError
from labctl.executors import classlab
from labctl.executors.steps import Report
from labctl.model.class_roster import Roster, Student
from labctl.model.inventory import parse_inventory
from labctl.ui import Progress

SANDBOX = "provider: sandbox\nhosts:\n  node1: {roles: [docker]}\n"
STATIC = "provider: static\nhosts:\n  node1: {roles: [docker], address: 192.0.2.1}\n"


def roster(*texts: str) -> Roster:
    return Roster("c.yaml", "c", tuple(Student(f"s{i}", parse_inventory(t, f"s{i}.yaml")) for i, t in enumerate(texts)))


def test_sandbox_students_run_as_many_at_once_as_this_machine_has_cores() -> None:
    assert classlab.students_at_once(roster(SANDBOX, SANDBOX)) == (os.cpu_count() or 1)
    assert classlab.students_at_once(roster(SANDBOX, STATIC)) == classlab.OTHER_STUDENTS_AT_ONCE


def test_the_reason_names_the_failing_host_and_the_last_line_of_its_error() -> None:
    exc = HostsFailed("networks", [HostFailure("node1", "docker network create", 1, "warning\nError: pool overlaps"),
                                   HostFailure("node2", "x", 1, "boom")])
    assert classlab.reason("alice", exc) == "networks: [node1] Error: pool overlaps (and 1 more host(s))"
    assert classlab.reason("alice", LabctlError("[node1] no known_hosts file\nmore")) == "[node1] no known_hosts file"
    assert classlab.reason("alice", RuntimeError("odd")) == "RuntimeError: odd"


def test_a_repair_inside_a_student_lab_gets_a_line_of_its_own_and_is_counted_in_the_changes() -> None:
    def one(inv, pb, quiet):  # type: ignore[no-untyped-def]
        report = Report(changes=[f"node1: network web: create ({inv.name})"])
        if inv.name == "s1":
            report.add("node2", "container c2: created again: it had no address on one of its networks")
            report.repairs.append(report.changes[-1])
        return report

    out = io.StringIO()
    klass = roster(SANDBOX, SANDBOX)
    outcomes = classlab.run_class("up", klass, {s.name: None for s in klass.students}, one,  # type: ignore[misc]
                                  Progress(stream=out))
    text = " ".join(out.getvalue().split())
    assert [len(o.report.changes) for o in outcomes if o.report] == [1, 2]
    assert "s1 repaired (counted in the changes): node2: container c2: created again" in text
    assert "s0 repaired" not in text and "s0 ok: 1 change(s)" in text and "s1 ok: 2 change(s)" in text
