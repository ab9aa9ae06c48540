"""Provisioning as exact commands (golden files), per store backend, and its idempotency.

No VM boots here, so fresh Debian 12 VMs are described by their facts (nothing installed, systemd running); the
commands those facts give are pinned in tests/unit/data/provision-*.golden. Regenerate after a deliberate
change with LABCTL_REGEN_GOLDEN=1. The etcd path also runs for real on sandbox hosts
(tests/integration/test_lab.py: `labctl provision` there finds everything present and changes nothing).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
import textwrap

import pytest

from labctl.executors.provision import parse_provision_facts
from labctl.model.inventory import load_inventory
from labctl.model.playbook import parse_playbook
from labctl.plan.lock import PRIVATE_DIR
from labctl.plan.provision import (
    CONSUL_SHA256,
    DOCKER_CE_VERSION,
    ProvisionFacts,
    ProvisionPlan,
    plan_provision,
    private_download,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "unit", "data")
# What to install, whatever the package source: the shipped inventory relays packages through the controller, whose
# own refusals and commands are tested in test_packages_via_controller.py.
INV = dataclasses.replace(load_inventory(os.path.join(ROOT, "inventories", "vagrant.yaml")), packages="direct")
NETS = "networks:\n  ov: {driver: overlay, subnet: 172.30.0.0/16}\n"
PLAYBOOKS = {
    "etcd": "name: t\nstore: {backend: etcd}\n" + NETS,
    "consul": "name: t\nstore: {backend: consul}\n" + NETS,
    "consul-image": "name: t\nstore: {backend: consul, image: 'hashicorp/consul:1.15'}\n" + NETS,
}
SHA = "0" * 64   # a stand-in: the real Docker CE checksum is not pinned in the repository (see plan.provision)
FRESH = {h.name: ProvisionFacts(h.name, os="debian 12", systemd=True) for h in INV.hosts}


def render(plan: ProvisionPlan) -> str:
    lines = []
    for s in plan.steps:
        lines.append(f"## {s.host}: {s.what} ({s.reason})")
        lines.append(s.command if s.command is not None else "# nothing to do")
    return "\n".join(lines) + "\n"


def plan_for(backend: str, facts: dict[str, ProvisionFacts], sha: str | None = SHA) -> ProvisionPlan:
    return plan_provision(INV, parse_playbook(PLAYBOOKS[backend], "p.yaml", INV), facts, sha)


@pytest.mark.parametrize("backend", sorted(PLAYBOOKS))
def test_fresh_vms_get_exactly_the_golden_commands(backend: str) -> None:
    plan = plan_for(backend, FRESH)
    assert plan.problems == []
    path = os.path.join(DATA, f"provision-{backend}.golden")
    if os.environ.get("LABCTL_REGEN_GOLDEN"):
        with open(path, "w") as f:
            f.write(render(plan))
    with open(path) as f:
        assert render(plan) == f.read()


def test_etcd_path_uses_debians_docker_and_etcd() -> None:
    text = render(plan_for("etcd", FRESH))
    assert "apt-get install -y -q --no-install-recommends docker.io" in text
    assert "install -y -q --no-install-recommends etcd-client etcd-server" in text
    assert "systemctl disable --now etcd.service" in text and "download.docker.com" not in text


def test_consul_path_checks_pinned_checksums() -> None:
    text = render(plan_for("consul", FRESH))
    assert f"docker-{DOCKER_CE_VERSION}.tgz" in text and f'echo "{SHA}  $d/docker.tgz" | sha256sum -c -' in text
    assert f'echo "{CONSUL_SHA256}  $d/consul.zip" | sha256sum -c -' in text
    assert "docker.io" not in text, "Debian's docker.io has no Consul backend"
    assert "/tmp" not in text, "downloads go to a private directory with an unpredictable name"


def test_a_malformed_docker_ce_checksum_is_a_problem_not_a_command() -> None:
    plan = plan_for("consul", FRESH, sha="abc; rm -rf /")
    assert any("LABCTL_DOCKER_CE_SHA256 must be the 64 lowercase hexadecimal digits" in p for p in plan.problems)
    assert "rm -rf /" not in render(plan)


def _run_download(tmp_path, payload: bytes, sha: str) -> tuple[int, str]:
    """The generated download command, run by bash with the private directory moved under tmp_path."""
    src = tmp_path / "payload.bin"
    src.write_bytes(payload)
    private = tmp_path / "private"
    cmd = private_download(f"file://{src}", sha, "payload.bin", f'cp "$d/payload.bin" {tmp_path}/installed')
    cmd = cmd.replace(PRIVATE_DIR, str(private))
    res = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=30)
    assert oct(private.stat().st_mode & 0o777) == "0o700"
    assert list(private.iterdir()) == [], "the download directory is removed whatever happened"
    return res.returncode, res.stderr


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed on this machine")
def test_private_download_checks_the_checksum_and_cleans_up(tmp_path) -> None:
    payload = b"a pinned release"
    good = hashlib.sha256(payload).hexdigest()
    assert _run_download(tmp_path, payload, good)[0] == 0
    assert (tmp_path / "installed").read_bytes() == payload
    (tmp_path / "installed").unlink()
    code, err = _run_download(tmp_path, payload, "0" * 64)
    assert code != 0 and "did NOT match" in err
    assert not (tmp_path / "installed").exists(), "nothing is installed from a file that fails its checksum"


def installed(backend: str) -> dict[str, ProvisionFacts]:
    """The facts the same VMs report once the golden commands have run."""
    docker = DOCKER_CE_VERSION if backend.startswith("consul") else "20.10.24+dfsg1"
    tools = frozenset({"curl", "unzip", "iptables", "ca-certificates", "fping", "nsenter", "python3", "tcpdump"})
    return {
        "store": ProvisionFacts("store", "debian 12", True, etcd=backend == "etcd",
                                dockerd_version="20.10.24+dfsg1" if backend == "consul-image" else "",
                                consul_version="1.15.4" if backend == "consul" else "", tools=tools),
        "node1": ProvisionFacts("node1", "debian 12", True, dockerd_version=docker, engine_id="AAAA", tools=tools),
        "node2": ProvisionFacts("node2", "debian 12", True, dockerd_version=docker, engine_id="BBBB", tools=tools),
    }


@pytest.mark.parametrize("backend", sorted(PLAYBOOKS))
def test_second_plan_is_empty_once_the_software_is_there(backend: str) -> None:
    plan = plan_for(backend, installed(backend))
    assert plan.problems == [] and plan.changes == []
    assert all(s.reason for s in plan.steps), "every no-op says why"


def test_cloned_boxes_get_new_engine_ids_except_the_first() -> None:
    facts = installed("etcd")
    facts["node2"] = ProvisionFacts("node2", "debian 12", True, dockerd_version="20.10.24+dfsg1", engine_id="AAAA",
                                    tools=facts["node1"].tools)
    changes = plan_for("etcd", facts).changes
    assert [(s.host, s.what) for s in changes] == [("node2", "new engine ID")]
    assert changes[0].command == ("systemctl stop docker.service && rm -f /etc/docker/key.json "
                                  "/var/lib/docker/engine-id && systemctl start docker.service")
    assert "same engine ID as node1" in changes[0].reason


def test_refusals_before_any_change() -> None:
    no_sha = plan_for("consul", FRESH, sha=None)
    assert any("LABCTL_DOCKER_CE_SHA256" in p for p in no_sha.problems)
    facts = dict(FRESH, node1=ProvisionFacts("node1", "debian 12", True, dockerd_version="24.0.7"))
    kvstore = parse_playbook("name: t\noverlay: {control: kvstore}\nstore: {backend: etcd}\n" + NETS, "p.yaml", INV)
    assert any("[node1] Docker Engine 24.0.7 is installed: it has no cluster-store" in p
               for p in plan_provision(INV, kvstore, facts, SHA).problems)
    auto = plan_for("etcd", facts)
    assert not any("[node1]" in p for p in auto.problems), "auto: a current engine carries the overlay on swarm"
    assert any(s.host == "node1" and "the overlay runs on swarm mode" in s.reason for s in auto.steps)
    facts = dict(FRESH, node1=ProvisionFacts("node1", "debian 12", True, dockerd_version="20.10.24+dfsg1"))
    assert any("Debian's docker.io has no Consul backend" in p for p in plan_for("consul", facts).problems)


def test_hosts_without_apt_are_refused_not_half_provisioned() -> None:
    facts = dict(FRESH, node2=ProvisionFacts("node2", "fedora 40", True))
    plan = plan_for("etcd", facts)
    assert any(p.startswith("[node2] needs docker.io, and labctl installs packages with apt on Debian or Ubuntu "
                            "only (this host: fedora 40)") for p in plan.problems)
    assert all(s.host != "node2" for s in plan.changes)


def test_verify_probe_tools_are_installed_where_apt_is_and_never_block() -> None:
    facts = installed("etcd")
    facts["node1"] = ProvisionFacts("node1", "debian 12", True, dockerd_version="20.10.24+dfsg1", engine_id="AAAA",
                                    tools=frozenset({"curl", "iptables", "nsenter"}))
    facts["node2"] = ProvisionFacts("node2", "fedora 40", True, dockerd_version="20.10.24+dfsg1", engine_id="BBBB",
                                    tools=frozenset({"curl", "iptables", "nsenter"}))
    plan = plan_for("etcd", facts)
    assert plan.problems == []
    assert [(s.host, s.what) for s in plan.changes] == [("node1", "install fping python3-minimal tcpdump")]
    note = [s for s in plan.steps if s.host == "node2" and s.what == "verify probes"]
    assert note and note[0].command is None and "verify pings inside the containers" in note[0].reason
    assert "trace cannot capture" in note[0].reason
    assert not [s for s in plan.steps if s.host == "store" and "fping" in s.what], "only docker hosts probe"


def test_facts_parsed_from_a_real_run_give_a_no_op_plan_for_etcd() -> None:
    with open(os.path.join(DATA, "provision-facts-sandbox.txt")) as f:
        out = "".join(line for line in f if not line.startswith("#"))
    facts = parse_provision_facts(out, "node1")
    assert facts.os == "debian 12" and not facts.systemd
    assert facts.dockerd_version == "20.10.24+dfsg1" and facts.etcd and facts.consul_version == ""
    assert {"curl", "iptables", "ca-certificates", "fping", "nsenter", "python3", "tcpdump"} <= facts.tools
    inv = load_inventory(os.path.join(ROOT, "inventories", "sandbox.yaml"))
    pb = parse_playbook(textwrap.dedent(PLAYBOOKS["etcd"]), "p.yaml", inv)
    plan = plan_provision(inv, pb, {h.name: parse_provision_facts(out, h.name) for h in inv.hosts})
    assert plan.problems == [] and plan.changes == [], "sandbox hosts share this machine's packages"
