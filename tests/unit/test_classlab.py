"""The class runner's decisions without hosts: how many students at once, and the one line of why a student failed."""

from __future__ import annotations

import os

from labctl.errors import HostFailure, HostsFailed, LabctlError
from labctl.executors import classlab
from labctl.model.class_roster import Roster, Student
from labctl.model.inventory import parse_inventory

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
