"""Class file: which student's lab is described by which inventory, for `labctl grade --class`.

    name: net101                     # optional
    causes: hide                     # optional: verify hides likely causes of a `break --class` fault (default show)
    students:
      alice: alice.yaml              # inventory path, relative to the class file
      bob: {inventory: /labs/bob.yaml}

Every inventory is loaded and validated up front; all problems of the class file and of every inventory are
reported together (exit 2) before any host is contacted.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from labctl.errors import Problem, ValidationError
from labctl.model.checks import Collector, join, short
from labctl.model.inventory import Inventory, load_inventory
from labctl.model.yamlsrc import parse_yaml, read_source

STUDENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,39}$")
TOP_FIELDS = ("name", "causes", "students")
CAUSES = ("show", "hide")
STUDENT_FIELDS = ("inventory",)


@dataclass(frozen=True)
class Student:
    name: str
    inventory: Inventory


@dataclass(frozen=True)
class Roster:
    source: str
    name: str
    students: tuple[Student, ...]
    causes: str = "show"          # what verify shows of a fault that `break --class` injected: "show" | "hide"


def load_roster(path: str) -> Roster:
    data = parse_yaml(read_source(path), path)
    c = Collector(path)
    if not isinstance(data, dict):
        raise ValidationError([Problem(path, "(file)", "must be a mapping with `students: {NAME: INVENTORY}`",
                                       "type")])
    top = c.mapping(data, "", TOP_FIELDS, required=("students",))
    name = top.get("name", os.path.splitext(os.path.basename(path))[0])
    if not isinstance(name, str):
        c.wrong_type("name", f"must be text, got {short(name)}")
    causes = top.get("causes", "show")
    if causes not in CAUSES:
        c.add("causes", f"{short(causes)} is not one of show, hide: `hide` keeps verify from naming the likely cause "
                        "of the fault `break --class` injects")
    raw = top.get("students")
    if "students" in top and (not isinstance(raw, dict) or not raw):
        c.wrong_type("students", "must map each student's name to an inventory file, e.g. `alice: alice.yaml`")
        raw = {}
    problems: list[Problem] = []
    students = []
    base = os.path.dirname(path)
    for student, spec in (raw or {}).items():
        fld = join("students", str(student))
        if not isinstance(student, str) or not STUDENT_RE.match(student):
            c.add(fld, f"{short(student)} is not a student name (letters, digits, '_', '.', '@', '-'; at most 40)")
            continue
        if isinstance(spec, dict):
            spec = c.mapping(spec, fld, STUDENT_FIELDS, required=STUDENT_FIELDS).get("inventory")
        if not isinstance(spec, str) or not spec.strip():
            c.missing(fld, "give the student's inventory file (a path relative to this class file, or absolute)")
            continue
        inv_path = spec if os.path.isabs(spec) else os.path.join(base, spec)
        try:
            students.append(Student(student, load_inventory(inv_path)))
        except ValidationError as exc:
            problems += [Problem(p.source, p.field, f"{p.message} (student {student} in {path})", p.category)
                         for p in exc.problems]
    if c.problems or problems:
        raise ValidationError(c.problems + problems)
    return Roster(source=path, name=str(name), students=tuple(students), causes=str(causes))
