"""GitHub Actions workflows against GitHub's workflow schema (check-jsonschema's vendored copy, offline).

The workflows themselves do not run here (no GitHub runner, no KVM): this proves their shape, not their run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKFLOWS = os.path.join(ROOT, ".github", "workflows")
CHECKER = shutil.which("check-jsonschema", path=os.path.dirname(sys.executable)) or shutil.which("check-jsonschema")
needs_checker = pytest.mark.skipif(CHECKER is None,
                                   reason="check-jsonschema is not installed (pip install -e '.[test]')")


def check(*paths: str) -> subprocess.CompletedProcess[str]:
    assert CHECKER is not None
    return subprocess.run([CHECKER, "--builtin-schema", "vendor.github-workflows", *paths], capture_output=True,
                          text=True, timeout=120)


@needs_checker
def test_workflows_match_githubs_schema() -> None:
    files = sorted(os.path.join(WORKFLOWS, f) for f in os.listdir(WORKFLOWS))
    assert [os.path.basename(f) for f in files] == ["ci.yml", "nightly.yml"]
    res = check(*files)
    assert res.returncode == 0, res.stdout + res.stderr


@needs_checker
def test_the_check_catches_a_broken_workflow(tmp_path) -> None:
    with open(os.path.join(WORKFLOWS, "nightly.yml")) as f:
        text = f.read()
    broken = tmp_path / "nightly.yml"
    broken.write_text(text.replace("runs-on: ubuntu-24.04", "runs_on: ubuntu-24.04"))
    res = check(str(broken))
    assert res.returncode != 0 and "runs_on" in res.stdout + res.stderr


def test_nightly_runs_vms_e2e_and_keeps_its_results() -> None:
    """The nightly job is `make vms-e2e`, whose exit trap destroys the VMs; the artifact is kept even on failure."""
    with open(os.path.join(WORKFLOWS, "nightly.yml")) as f:
        text = f.read()
    assert "run: sudo make vms-e2e" in text
    block = text.split("- name: Keep the verdict", 1)[1]
    assert "if: always()" in block and "upload-artifact" in block and "path: vms-e2e/" in block
    assert "schedule:" in text and "workflow_dispatch:" in text
    with open(os.path.join(ROOT, "vms", "e2e.sh")) as f:
        script = f.read()
    assert "trap finish EXIT" in script and "remove_vms" in script
    assert 'fab verify --junit "$OUT/verify-junit.xml"' in script
