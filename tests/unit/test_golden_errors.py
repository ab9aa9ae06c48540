"""Golden error tests, as netlab's tests/errors: each bad input in tests/errors/ is paired with the whole error
output `labctl validate` must give for it (NAME.log), and exit 2. Playbooks (pb-*) are validated against the
shipped sandbox inventory, inventories (inv-*) alone. After a deliberate change of wording, regenerate with
`LABCTL_REGOLD=1 pytest tests/unit/test_golden_errors.py` and read the diff."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from labctl import cli
from labctl.errors import CATEGORIES

ERRORS = Path(__file__).parents[1] / "errors"
CASES = sorted(p.stem for p in ERRORS.glob("*.yaml"))


def argv(case: str) -> list[str]:
    if case.startswith("pb-"):
        return ["-q", "validate", "-i", "../../inventories/sandbox.yaml", "-p", f"{case}.yaml"]
    return ["-q", "validate", "-i", f"{case}.yaml", "--all-labs"]


def test_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30 and all((ERRORS / f"{c}.log").exists() or os.environ.get("LABCTL_REGOLD")
                                    for c in CASES)


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gives_exactly_its_golden_error(case: str, monkeypatch, capsys) -> None:
    monkeypatch.chdir(ERRORS)
    for var in ("LABCTL_INVENTORY", "LABCTL_PLAYBOOK"):
        monkeypatch.delenv(var, raising=False)
    code = cli.main(argv(case))
    out = capsys.readouterr()
    golden = ERRORS / f"{case}.log"
    if os.environ.get("LABCTL_REGOLD"):
        golden.write_text(out.err)
    assert code == 2, f"{case}: exit {code}\n{out.err}"
    assert out.err == golden.read_text(), f"{case}: the error output changed"
    assert "nothing was changed on any host" in out.err and f"{case}.yaml" in out.err


CATEGORY_OF = {text: key for key, text in CATEGORIES.items()}


@pytest.mark.parametrize("case", CASES)
def test_validate_json_gives_the_same_problems_with_their_categories(case: str, monkeypatch, capsys) -> None:
    monkeypatch.chdir(ERRORS)
    for var in ("LABCTL_INVENTORY", "LABCTL_PLAYBOOK"):
        monkeypatch.delenv(var, raising=False)
    code = cli.main([*argv(case), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 2 and report["ok"] is False
    shown = [line[4:] for line in (ERRORS / f"{case}.log").read_text().splitlines() if line.startswith("  - [")]
    assert len(report["problems"]) == len(shown)
    for problem, line in zip(report["problems"], shown, strict=True):
        category, _, rest = line[1:].partition("] ")
        assert CATEGORY_OF[category] == problem["category"]
        assert rest.startswith(f"{problem['source']}: {problem['field']}: ")


def test_every_category_has_a_golden_case() -> None:
    seen = {line.split("]")[0][5:] for c in CASES for line in (ERRORS / f"{c}.log").read_text().splitlines()
            if line.startswith("  - [")}
    assert seen == set(CATEGORIES.values())


def test_a_good_lab_validates_as_json(monkeypatch, capsys) -> None:
    monkeypatch.chdir(ERRORS.parent.parent)
    code = cli.main(["-q", "validate", "-i", "inventories/sandbox.yaml", "-p", "playbooks/seed-overlay.yaml",
                     "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["ok"] is True and report["problems"] == []
    assert [c["kind"] for c in report["checked"]] == ["inventory", "playbook"]
