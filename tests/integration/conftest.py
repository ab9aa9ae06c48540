"""Real sandbox hosts for integration tests: namespaces, sshd, dockerd on this machine (root only)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REQUIRED = ("unshare", "nsenter", "ip", "ssh-keygen", "start-stop-daemon", "busybox")


def missing_prerequisites() -> str | None:
    if os.geteuid() != 0:
        return "integration tests need root (namespaces, veths, mounts); run `make test` as root"
    missing = [b for b in REQUIRED if shutil.which(b) is None]
    missing += [p for p in ("/usr/sbin/sshd", "/usr/sbin/dockerd") if not os.access(p, os.X_OK)]
    if missing:
        return f"missing {', '.join(missing)}: run `make test`, which installs them"
    return None


def pytest_collection_modifyitems(config, items):  # type: ignore[no-untyped-def]
    reason = missing_prerequisites()
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@dataclass
class Lab:
    name: str
    inventory: Path
    state_root: Path
    env: dict[str, str]
    playbook: Path | None = None  # the lab a test module brings up, when it has one

    def labctl(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([sys.executable, "-m", "labctl.cli", *args], env=self.env, capture_output=True,
                             text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"labctl {' '.join(args)} exited {res.returncode}:\n{res.stdout}\n{res.stderr}")
        return res

    def ssh(self, host: str, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.labctl("ssh", host, "-i", str(self.inventory), "--", command, check=check, timeout=120)


@pytest.fixture
def hosts(lab: Lab):  # type: ignore[no-untyped-def]
    """Fabric connections to the module's sandbox lab (each module defines its own `lab` fixture)."""
    from labctl.executors.remote import Hosts
    from labctl.model.inventory import load_inventory
    from labctl.providers import registry

    os.environ["LABCTL_STATE_DIR"] = lab.env["LABCTL_STATE_DIR"]
    with Hosts(registry.endpoints(load_inventory(str(lab.inventory)))) as h:
        yield h


def make_lab(tmp: Path, name: str, subnet: str, hosts: dict[str, list[str]]) -> Lab:
    tmp.mkdir(parents=True, exist_ok=True)
    inv = tmp / f"{name}.yaml"
    lines = [f"name: {name}", "provider: sandbox", f"underlay: {{subnet: {subnet}}}", "hosts:"]
    lines += [f"  {h}: {{roles: [{', '.join(r)}]}}" for h, r in hosts.items()]
    inv.write_text("\n".join(lines) + "\n")
    state = tmp / "state"
    env = dict(os.environ, LABCTL_STATE_DIR=str(state), PYTHONPATH=str(Path(__file__).parents[2]))
    return Lab(name, inv, state, env)


def sh(hosts, host: str, cmd: str):  # type: ignore[no-untyped-def]
    """A command on a sandbox host; its result (never raises)."""
    return hosts.conn(host).run(cmd, hide=True, warn=True)


def seed_sandbox(tmp_path_factory, name: str, subnet: str, playbooks: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    """Module fixture body: fresh sandbox hosts store, node1, node2 for lab `name` on `subnet`; at the end each
    playbook's lab is taken down and the sandbox removed (also after a failed test)."""
    lab = make_lab(tmp_path_factory.mktemp(name), name, subnet,
                   {"store": ["store"], "node1": ["docker"], "node2": ["docker"]})
    lab.labctl("sandbox", "down", "-i", str(lab.inventory))
    lab.labctl("sandbox", "up", "-i", str(lab.inventory))
    yield lab
    for pb in playbooks:
        lab.labctl("down", "-i", str(lab.inventory), "-p", pb, "--wait", "60", check=False)
    lab.labctl("sandbox", "down", "-i", str(lab.inventory), check=False)


def sandbox_class(tmp_path_factory, name: str, subnet: str, playbook: str, up: bool = False):  # type: ignore[no-untyped-def]
    """Module fixture body: a class of 4 sandbox seed-lab hosts (store, node1, node2 each) made by `sandbox up
    --class 4` from a template lab `name` on `subnet`, the playbook's lab up on every student when `up`; yields
    (lab, class file); at the end every student's lab goes down and the sandboxes are removed."""
    tmp = tmp_path_factory.mktemp(name)
    lab = make_lab(tmp, name, subnet, {"store": ["store"], "node1": ["docker"], "node2": ["docker"]})
    directory = tmp / "class"
    lab.labctl("sandbox", "up", "-i", str(lab.inventory), "--class", "4", "--class-dir", str(directory))
    roster = directory / "class.yaml"
    if up:
        lab.labctl("up", "--class", str(roster), "-p", playbook, timeout=900)
    yield lab, roster
    lab.labctl("down", "--class", str(roster), "-p", playbook, check=False, timeout=600)
    lab.labctl("sandbox", "down", "--class", str(roster), check=False)
