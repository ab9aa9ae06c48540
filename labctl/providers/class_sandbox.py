"""`labctl sandbox up --class N`: N student labs made from one sandbox inventory, for an instructor to rehearse a
class on one machine. Each student gets the inventory's hosts under a lab name of its own and a subnet no other
sandbox lab uses; the inventories and a class file (student -> inventory) are written to a directory, so that
`labctl grade --class` and `labctl sandbox down --class` find them. Running it again reuses each student's lab and
subnet (idempotent)."""

from __future__ import annotations

import ipaddress
import os

import yaml

from labctl.errors import UsageError
from labctl.model.inventory import Inventory
from labctl.model.yamlsrc import parse_yaml, read_source

CLASS_FILE = "class.yaml"


def student_lab(template: str, i: int) -> str:
    """"sandbox" -> "sandbox-s3": at most 16 characters, as lab names are."""
    suffix = f"-s{i}"
    return template[:16 - len(suffix)].rstrip("-") + suffix


def free_subnets(template: Inventory, labs: list[str], existing: dict[str, str]) -> dict[str, str]:
    """A subnet per student lab: the one it has when it exists, else the next blocks of the template's size after
    the template's own that overlap no sandbox lab of this machine."""
    assert template.subnet is not None
    size = template.subnet.num_addresses
    taken = [ipaddress.ip_network(s) for name, s in existing.items() if name not in labs]
    taken.append(template.subnet)
    result: dict[str, str] = {}
    for lab in labs:
        if lab in existing:
            result[lab] = existing[lab]
            taken.append(ipaddress.ip_network(existing[lab]))
    k = 1
    for lab in labs:
        if lab in result:
            continue
        while True:
            start = int(template.subnet.network_address) + k * size
            if start + size > 2**32 or k > 4096:
                raise UsageError(f"no free subnet of {template.subnet}'s size left after it for {lab}",
                                 hint="give the inventory another underlay.subnet")
            candidate = ipaddress.ip_network(f"{ipaddress.ip_address(start)}/{template.subnet.prefixlen}")
            k += 1
            if not any(candidate.overlaps(t) for t in taken) and not candidate.is_loopback:
                break
        result[lab] = str(candidate)
        taken.append(candidate)
    return result


def write_class(template: Inventory, count: int, directory: str, existing: dict[str, str]) -> str:
    """Write DIRECTORY/<lab>.yaml for each student and DIRECTORY/class.yaml; returns the class file's path."""
    data = parse_yaml(read_source(template.source), template.source)
    labs = [student_lab(template.name, i) for i in range(1, count + 1)]
    subnets = free_subnets(template, labs, existing)
    os.makedirs(directory, exist_ok=True)
    students = {}
    for i, lab in enumerate(labs, start=1):
        inv = dict(data, name=lab, underlay=dict(data.get("underlay") or {}, subnet=subnets[lab]))
        path = os.path.join(directory, f"{lab}.yaml")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(f"# student{i}'s lab, made by `labctl sandbox up --class {count}` from {template.source}\n")
            yaml.safe_dump(inv, fh, sort_keys=False)
        students[f"student{i}"] = f"{lab}.yaml"
    roster = os.path.join(directory, CLASS_FILE)
    with open(roster, "w", encoding="utf-8") as fh:
        fh.write(f"# a class of {count} sandbox student labs (labctl sandbox up --class); "
                 "grade: labctl grade --class THIS -e EXERCISE\n")
        yaml.safe_dump({"name": os.path.basename(os.path.normpath(directory)), "students": students}, fh,
                       sort_keys=False)
    return roster
