"""`make vms-e2e` and the box recipe: what can be checked without booting (the boot itself is `make vms-e2e`)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("script", ["vms/e2e.sh", "vms/build-box.sh"])
def test_scripts_parse_and_are_executable(script: str) -> None:
    path = os.path.join(ROOT, script)
    assert os.access(path, os.X_OK), f"{script} must be executable (make vms-e2e runs it directly)"
    res = subprocess.run(["bash", "-n", path], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_vms_e2e_is_its_own_target_and_not_part_of_make_test() -> None:
    with open(os.path.join(ROOT, "Makefile")) as f:
        make = f.read()
    assert re.search(r"^vms-e2e:\n\tPLAYBOOK=\$\(PLAYBOOK\) vms/e2e\.sh$", make, re.M)
    test_rule = re.search(r"^test: (.*)$", make, re.M)
    assert test_rule is not None and "vms" not in test_rule.group(1)


def test_e2e_runs_the_readme_commands_in_order() -> None:
    with open(os.path.join(ROOT, "vms", "e2e.sh")) as f:
        steps = re.findall(r"^step (\S+) (.*)$", f.read(), re.M)
    names = [n for n, _ in steps]
    assert names == ["deps", "libvirt", "leftovers", "box", "boot", "isolation", "provision", "up", "up-again",
                     "verify", "down", "destroy"]
    commands = dict(steps)
    assert commands["boot"].startswith("vagrant up --provider=libvirt")
    assert commands["verify"].startswith("fab verify --junit")
    assert commands["destroy"].startswith("vagrant destroy -f")


def test_refuses_to_run_without_root() -> None:
    """Before it touches anything: run as nobody from a copy that nobody can read (the clone may be root-only)."""
    if os.geteuid() != 0:
        res = subprocess.run([os.path.join(ROOT, "vms", "e2e.sh")], capture_output=True, text=True, timeout=30)
    else:
        top = tempfile.mkdtemp(prefix="labctl-e2e-", dir="/tmp")
        try:
            os.chmod(top, 0o755)
            os.mkdir(os.path.join(top, "vms"))
            copy = os.path.join(top, "vms", "e2e.sh")
            shutil.copy(os.path.join(ROOT, "vms", "e2e.sh"), copy)
            os.chmod(os.path.join(top, "vms"), 0o755)
            os.chmod(copy, 0o755)
            res = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", copy],
                                 capture_output=True, text=True, timeout=30, cwd="/")
            assert sorted(os.listdir(top)) == ["vms"], "nothing was created"
        finally:
            shutil.rmtree(top)
    assert res.returncode == 1 and "run as root" in res.stderr, res.stdout + res.stderr
