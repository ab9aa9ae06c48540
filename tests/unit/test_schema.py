"""The JSON Schemas in docs/schema/ against the validators they are derived from: they are current, every shipped
YAML file names its schema for editors and passes it, and the schema refuses what the validators call a structural
mistake (an unknown field, a wrong type). Regenerate after a deliberate change with
`LABCTL_REGOLD=1 pytest tests/unit/test_schema.py`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
import yaml

from labctl.model import class_roster, playbook, schema
from labctl.model.class_roster import load_roster

ROOT = Path(__file__).parents[2]
SCHEMAS = ROOT / "docs" / "schema"
ERRORS = ROOT / "tests" / "errors"
SHIPPED = [(p, kind) for folder, kind in (("inventories", "inventory"), ("playbooks", "playbook"),
                                          ("exercises", "exercise"))
           for p in sorted((ROOT / folder).glob("*.yaml"))]


def validator(kind: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads((SCHEMAS / f"{kind}.json").read_text()))


@pytest.mark.parametrize("kind", schema.KINDS)
def test_shipped_schema_is_the_one_the_code_builds(kind: str) -> None:
    built = json.dumps(schema.schema(kind), indent=2) + "\n"
    path = SCHEMAS / f"{kind}.json"
    if os.environ.get("LABCTL_REGOLD"):
        path.write_text(built)
    jsonschema.Draft7Validator.check_schema(json.loads(built))
    assert path.read_text() == built, f"{path} is out of date: LABCTL_REGOLD=1 pytest tests/unit/test_schema.py"


@pytest.mark.parametrize(("path", "kind"), SHIPPED, ids=[f"{p.parent.name}/{p.name}" for p, _ in SHIPPED])
def test_shipped_file_names_its_schema_and_passes_it(path: Path, kind: str) -> None:
    assert path.read_text().splitlines()[0] == f"# yaml-language-server: $schema=../docs/schema/{kind}.json"
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator(kind).iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


STRUCTURAL = sorted(p.stem for p in ERRORS.glob("*.yaml")
                    if "[wrong type]" in (log := (ERRORS / f"{p.stem}.log").read_text()) or "unknown field" in log)


@pytest.mark.parametrize("case", STRUCTURAL)
def test_schema_refuses_what_the_validator_calls_structural(case: str) -> None:
    kind = "playbook" if case.startswith("pb-") else "inventory"
    data = yaml.safe_load((ERRORS / f"{case}.yaml").read_text())
    assert not validator(kind).is_valid(data), f"{case}: the validator refuses its structure, the schema does not"


def test_there_are_structural_cases() -> None:
    assert len(STRUCTURAL) >= 3


def test_a_class_file_the_validator_accepts_passes_the_schema(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text((ROOT / "inventories" / "sandbox.yaml").read_text())
    text = "name: monday\nstudents:\n  alice: a.yaml\n  bob: {inventory: a.yaml}\n"
    (tmp_path / "class.yaml").write_text(text)
    assert len(load_roster(str(tmp_path / "class.yaml")).students) == 2
    assert validator("class").is_valid(yaml.safe_load(text))
    assert not validator("class").is_valid({"students": {"carol": {"inv": "a.yaml"}}})


def test_a_validator_field_without_a_schema_type_is_caught(monkeypatch) -> None:
    monkeypatch.setattr(playbook, "TOP_FIELDS", (*playbook.TOP_FIELDS, "volumes"))
    with pytest.raises(KeyError, match="volumes"):
        schema.schema("playbook")
    monkeypatch.setattr(class_roster, "STUDENT_FIELDS", ("inventory", "seat"))
    with pytest.raises(KeyError, match="seat"):
        schema.schema("class")
