"""The front door on real sandbox hosts: bare `fab sandbox-up`, `fab up`, `fab verify`, `fab down` in a project
with a fabric.yaml and in one without (the shipped defaults' places), and Docker's standalone-bridge tutorial."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labctl.executors.remote import Hosts
from tests.integration.conftest import Lab, make_lab, sh

ROOT = Path(__file__).parents[2]
LAB = "fdoor"
SUBNET = "198.18.70.0/24"
FAB = str(Path(sys.executable).parent / "fab")
TUTORIAL = str(ROOT / "playbooks" / "standalone-bridge.yaml")
FABFILE = "from labctl.fabtasks import collection\n\nns = collection()\n"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):  # type: ignore[no-untyped-def]
    lab = make_lab(tmp_path_factory.mktemp(LAB), LAB, SUBNET,
                   {"store": ["store"], "node1": ["docker"], "node2": ["docker"]})
    for var in ("LABCTL_INVENTORY", "LABCTL_PLAYBOOK"):
        lab.env.pop(var, None)
    lab.labctl("sandbox", "down", "-i", str(lab.inventory))
    yield lab
    for pb in (str(ROOT / "playbooks" / "seed-overlay.yaml"), TUTORIAL):
        lab.labctl("down", "-i", str(lab.inventory), "-p", pb, "--wait", "60", check=False)
    lab.labctl("sandbox", "down", "-i", str(lab.inventory), check=False)


def fab(lab: Lab, cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([FAB, *argv], cwd=cwd, env=lab.env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"fab {' '.join(argv)} exited {res.returncode}:\n{res.stdout}\n{res.stderr}"
    return res


def first_line(res: subprocess.CompletedProcess[str]) -> str:
    return res.stderr.splitlines()[0]


def test_bare_fab_with_fabric_yaml(lab: Lab, tmp_path: Path) -> None:
    (tmp_path / "fabfile.py").write_text(FABFILE)
    shutil.copy(lab.inventory, tmp_path / "lab.yaml")
    shutil.copy(ROOT / "playbooks" / "seed-overlay.yaml", tmp_path / "pb.yaml")
    (tmp_path / "fabric.yaml").write_text("labctl:\n  inventory: lab.yaml\n  playbook: pb.yaml\n")
    files = "inventory lab.yaml (fabric.yaml), playbook pb.yaml (fabric.yaml)"
    assert first_line(fab(lab, tmp_path, "sandbox-up")) == "labctl sandbox up: inventory lab.yaml (fabric.yaml)"
    up = fab(lab, tmp_path, "up")
    assert first_line(up) == f"labctl up: {files}" and "change(s)" in up.stdout
    verify = fab(lab, tmp_path, "verify")
    assert first_line(verify) == f"labctl verify: {files}" and "OK: 42/42" in verify.stdout
    status = fab(lab, tmp_path, "status")
    assert "everything in the playbook exists and runs" in status.stdout
    down = fab(lab, tmp_path, "down")
    assert first_line(down) == f"labctl down: {files}" and "change(s)" in down.stdout


def test_bare_fab_without_fabric_yaml_uses_the_projects_shipped_paths(lab: Lab, tmp_path: Path) -> None:
    (tmp_path / "fabfile.py").write_text(FABFILE)
    (tmp_path / "inventories").mkdir()
    (tmp_path / "playbooks").mkdir()
    shutil.copy(lab.inventory, tmp_path / "inventories" / "sandbox.yaml")
    shutil.copy(ROOT / "playbooks" / "seed-overlay.yaml", tmp_path / "playbooks" / "seed-overlay.yaml")
    work = tmp_path / "playbooks"            # from a subdirectory, as fab finds its fabfile upwards
    files = (f"inventory {tmp_path}/inventories/sandbox.yaml (shipped default), playbook seed-overlay.yaml "
             "(shipped default)")         # relative to the current directory when under it, else absolute
    fab(lab, work, "sandbox-up")
    assert first_line(fab(lab, work, "up")) == f"labctl up: {files}"
    verify = fab(lab, work, "verify", "--junit", str(tmp_path / "junit.xml"))
    assert "OK: 42/42" in verify.stdout and (tmp_path / "junit.xml").exists()
    again = fab(lab, work, "up")
    assert "no changes" in again.stdout
    fab(lab, work, "down")
    status = json.loads(lab.labctl("status", "-i", str(lab.inventory), "--all-labs", "--json").stdout)
    assert status["networks"] == [] and status["containers"] == [], "down left nothing of the lab"


def test_dockers_standalone_bridge_tutorial(lab: Lab, hosts: Hosts) -> None:
    lab.labctl("sandbox", "up", "-i", str(lab.inventory))
    args = ["-i", str(lab.inventory), "-p", TUTORIAL]
    lab.labctl("up", *args)
    try:
        res = lab.labctl("verify", *args, "--json", "-")
        checks = {(c["src"], c["dst"], c["via"]): c for c in json.loads(res.stdout)["checks"]}
        assert json.loads(res.stdout)["ok"], res.stdout[-2000:]
        ip3 = sh(hosts, "node1", "docker inspect -f '{{.NetworkSettings.Networks.bridge.IPAddress}}' alpine3"
                 ).stdout.strip()
        # The tutorial's own commands and what it says they print, run here; then verify's derived check agrees.
        said = [("alpine1", "alpine2", "name", "ping -c 2 alpine2", True),
                ("alpine1", "alpine4", "name", "ping -c 2 alpine4", True),
                ("alpine1", "alpine3", "name", "ping -c 2 alpine3", False),      # bad address 'alpine3'
                ("alpine1", "alpine3", "ip", f"ping -c 2 -W 1 {ip3}", False),     # 100% packet loss
                ("alpine4", "alpine1", "name", "ping -c 2 alpine1", True),
                ("alpine4", "alpine3", "name", "ping -c 2 alpine3", False),      # bad address 'alpine3'
                ("alpine4", "alpine3", "ip", f"ping -c 2 -W 1 {ip3}", True)]
        for src, dst, via, command, answers in said:
            ran = sh(hosts, "node1", f"docker exec {src} {command}")
            assert ran.ok == answers, f"{src}: {command}: {ran.stdout}{ran.stderr}"
            if via == "name" and not answers:
                assert "bad address" in ran.stdout + ran.stderr
            check = checks[(src, dst, via)]
            assert check["expect"] == ("reach" if answers else "isolated") and check["ok"], check
        networks = sh(hosts, "node1", "docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} "
                                      "{{end}}' alpine4").stdout.split()
        assert sorted(networks) == ["alpine-net", "bridge"], "alpine4 on both, as `docker network connect bridge`"
        assert "no changes" in lab.labctl("up", *args).stdout
    finally:
        lab.labctl("down", *args)
    assert not sh(hosts, "node1", "docker ps -aq --filter name=alpine").stdout.strip()
