"""JSON Schemas of labctl's input files (inventory, playbook, exercise, class file), for editors and other tools.

The field names come from the validators' own tables (playbook.TOP_FIELDS, inventory.HOST_FIELDS, ...), so a field
added there without a type here fails `tests/unit/test_schema.py`, and the shipped `docs/schema/*.json` are
regenerated from this module (`LABCTL_REGOLD=1 pytest tests/unit/test_schema.py`). The schema checks structure:
which fields exist, their types, the allowed words. Rules across fields (overlapping subnets, per-host ranges,
references between containers and networks, names Docker rejects) stay in the validators, which remain the
authority: a file the schema accepts can still be refused by `labctl validate`, never the other way round for a
file the validators accept.

Pure: builds dictionaries, no I/O.
"""

from __future__ import annotations

from typing import Any

from labctl import engines
from labctl.model import class_roster, exercise, inventory, playbook, providers
from labctl.model.checks import HOST_NAME_RE, LAB_NAME_RE
from labctl.model.hosts import BECOME_METHODS, HOST_KEY_POLICIES

DRAFT = "http://json-schema.org/draft-07/schema#"
KINDS = ("inventory", "playbook", "exercise", "class")
Schema = dict[str, Any]

STRING: Schema = {"type": "string", "minLength": 1}
TEXT: Schema = {"type": "string"}
STRINGS: Schema = {"type": "array", "items": STRING, "minItems": 1}
PORT: Schema = {"type": "integer", "minimum": 1, "maximum": 65535}
SCALAR: Schema = {"type": ["string", "integer"]}


def enum(values: tuple[str, ...] | list[str], what: str = "") -> Schema:
    out: Schema = {"enum": list(values)}
    if what:
        out["description"] = what
    return out


def obj(fields: tuple[str, ...], types: dict[str, Schema], required: tuple[str, ...] = (),
        description: str = "") -> Schema:
    """A mapping with exactly these fields; every field named by the validator's table must have a type here."""
    missing = [f for f in fields if f not in types]
    extra = [f for f in types if f not in fields]
    if missing or extra:
        raise KeyError(f"schema out of step with the validator: no type for {missing}, unknown {extra}")
    out: Schema = {"type": "object", "properties": {f: types[f] for f in fields}, "additionalProperties": False}
    if required:
        out["required"] = list(required)
    if description:
        out["description"] = description
    return out


def mapping_of(value: Schema, description: str, key_pattern: str | None = None) -> Schema:
    out: Schema = {"type": "object", "additionalProperties": value, "description": description}
    if key_pattern:
        out["propertyNames"] = {"pattern": key_pattern}
    return out


def _ssh() -> Schema:
    return obj(inventory.SSH_FIELDS, {"user": STRING, "port": PORT, "key": STRING, "known_hosts": STRING,
                                      "become": enum(BECOME_METHODS, "run what needs root through this, as `user`"),
                                      "jump": STRING, "config_host": STRING, "config": STRING,
                                      "host_keys": enum(HOST_KEY_POLICIES, "what to do with an unknown host key")},
               description="SSH settings (the inventory's default, or one host's)")


def inventory_schema() -> Schema:
    engine = enum(engines.names(), "the Docker Engine of the docker hosts (`labctl engines`)")
    host = obj(inventory.HOST_FIELDS, {
        "roles": {"type": "array", "items": enum(inventory.ROLES), "minItems": 1},
        "address": STRING, "ssh": _ssh(), "engine": engine}, required=("roles",))
    own = {f: s for r in providers.RULES.values() for f, s in r.own_schema.items()}
    types = {
        "name": {"type": "string", "pattern": LAB_NAME_RE.pattern},
        "provider": enum(tuple(providers.RULES), "how the hosts come to exist and are reached"),
        "underlay": obj(inventory.UNDERLAY_FIELDS, {"interface": STRING, "subnet": STRING}),
        "ssh": _ssh(), "image": STRING,
        "hosts": {**mapping_of(host, "host name -> its roles and address", HOST_NAME_RE.pattern), "minProperties": 1},
        "packages": enum(inventory.PACKAGE_SOURCES), "engine": engine, **own}
    return obj(inventory.top_fields(), types, required=("provider", "hosts"), description="a labctl inventory")


def _attachments() -> Schema:
    attach = obj(playbook.ATTACH_FIELDS, {"ip": STRING, "aliases": STRINGS})
    return {"oneOf": [{"type": "array", "items": STRING},
                      mapping_of({"oneOf": [attach, {"type": "null"}]}, "network -> {ip, aliases}")]}


def _expectations(required: tuple[str, ...]) -> Schema:
    entry = obj(playbook.EXPECT_FIELDS, {**{f: STRING for f in playbook.EXPECT_FIELDS},
                                         "expect": enum(("reach", "isolated"))}, required=required)
    return {"type": "array", "items": entry}


def playbook_schema() -> Schema:
    network = obj(playbook.NETWORK_FIELDS, {
        "driver": enum(playbook.DRIVERS), "subnet": STRING, "gateway": STRING, "ip_range": STRING,
        "bridge_name": STRING, "parent": STRING, "mtu": {"type": "integer", "minimum": 576, "maximum": 9216},
        "hosts": STRINGS, "options": mapping_of(SCALAR, "driver option -> value")}, required=("driver", "subnet"))
    container = obj(playbook.CONTAINER_FIELDS, {
        "host": STRING, "image": STRING,
        "command": {"oneOf": [STRING, {"type": "array", "items": SCALAR, "minItems": 1}]},
        "networks": _attachments(), "network_mode": STRING,
        "ports": {"type": "array", "items": SCALAR}}, required=("host",))
    types = {
        "name": {"type": "string", "pattern": playbook.DOCKER_NAME_RE.pattern},
        "overlay": obj(playbook.OVERLAY_FIELDS, {"control": enum(playbook.controls())}),
        "store": obj(playbook.STORE_FIELDS, {"backend": enum(playbook.BACKENDS), "data_dir": STRING, "port": PORT,
                                             "image": STRING}, required=("backend",)),
        "docker0": obj(playbook.DOCKER0_FIELDS, {"bip": {"oneOf": [
            STRING, {"const": False}, {"type": "null"}, mapping_of(STRING, "docker host -> its docker0 address")]}}),
        "networks": mapping_of(network, "network name -> {driver, subnet, ...}"),
        "containers": mapping_of(container, "container name -> {host, image, networks, ...}"),
        "images": mapping_of(STRING, "image -> archive on this machine"),
        "expect": _expectations(("from", "expect"))}
    return obj(playbook.TOP_FIELDS, types, description="a labctl playbook (the lab on top of an inventory)")


def exercise_schema() -> Schema:
    network = obj(exercise.NETWORK_FIELDS, {
        **{f: SCALAR for f in ("name", "driver", "subnet", "gateway", "ip_range", "bridge_name", "parent")},
        "options": mapping_of(SCALAR, "driver option -> expected value"), "hosts": STRINGS})
    container = obj(exercise.CONTAINER_FIELDS, {
        "name": STRING, "host": STRING, "image": STRING, "running": {"oneOf": [{"type": "boolean"}, {"const": "any"}]},
        "networks": _attachments(), "network_mode": STRING, "ports": {"type": "array", "items": SCALAR}},
        required=("host",))
    task = obj(exercise.TASK_FIELDS, {
        "id": STRING, "title": TEXT, "points": {"type": "integer", "minimum": 0, "maximum": exercise.MAX_POINTS},
        "networks": mapping_of(network, "network handle -> what it must be"),
        "containers": mapping_of(container, "container handle -> what it must be"),
        "expect": _expectations(("from", "expect")), "hint": TEXT}, required=("id",))
    types = {"name": STRING, "title": TEXT, "description": TEXT,
             "tasks": {"type": "array", "items": task, "minItems": 1}}
    return obj(exercise.TOP_FIELDS, types, required=("name", "tasks"), description="a labctl exercise (graded)")


def class_schema() -> Schema:
    student = {"oneOf": [STRING, obj(class_roster.STUDENT_FIELDS, {"inventory": STRING}, required=("inventory",))]}
    types = {"name": TEXT, "causes": enum(class_roster.CAUSES, "what verify shows of a `break --class` fault"),
             "students": {**mapping_of(student, "student -> their inventory file"),
                                        "minProperties": 1}}
    return obj(class_roster.TOP_FIELDS, types, required=("students",), description="a labctl class file")


BUILDERS = {"inventory": inventory_schema, "playbook": playbook_schema, "exercise": exercise_schema,
            "class": class_schema}


def schema(kind: str) -> Schema:
    """The whole schema document of one kind of file."""
    return {"$schema": DRAFT, "title": f"labctl {kind}", **BUILDERS[kind]()}
