"""Provisioning as exact commands (golden files), per store backend, and its idempotency.

No VM boots here, so fresh Debian 12 VMs are described by their facts (nothing installed, systemd running); the
commands those facts give are pinned in tests/unit/data/provision-*.golden. Regenerate after a deliberate
change with LABCTL_REGEN_GOLDEN=1. The etcd path also runs for real on sandbox hosts
(tests/integration/test_lab.py: `labctl provision` there finds everything present and changes nothing).
"""

from __future__ import annotations

import dataclasses
import os
import textwrap

import pytest

from labctl.executors.provision import parse_provision_facts
from labctl.model.inventory import load_inventory, parse_inventory
from labctl.model.playbook import parse_playbook
from labctl.plan.provision import ProvisionFacts, ProvisionPlan, plan_provision

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
SOURCES = ("http://mirror.example/debian", "http://mirror.example/debian-security")   # the VMs' own apt sources
FRESH = {h.name: ProvisionFacts(h.name, os="debian 12", systemd=True, apt_sources=SOURCES) for h in INV.hosts}


def render(plan: ProvisionPlan) -> str:
    lines = []
    for s in plan.steps:
        lines.append(f"## {s.host}: {s.what} ({s.reason})")
        lines.append(s.command if s.command is not None else "# nothing to do")
    return "\n".join(lines) + "\n"


def plan_for(backend: str, facts: dict[str, ProvisionFacts], inv=INV) -> ProvisionPlan:  # type: ignore[no-untyped-def]
    return plan_provision(inv, parse_playbook(PLAYBOOKS[backend], "p.yaml", inv), facts)


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


def test_consul_path_takes_docker_and_consul_from_debian_11_pinned() -> None:
    plan = plan_for("consul", FRESH)
    assert plan.problems == []
    text = render(plan)
    for host in ("node1", "node2"):
        source = next(s for s in plan.steps if s.host == host and s.what == "apt source bullseye")
        assert "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian " \
               "bullseye main" in source.command
        assert "Package: containerd docker.io runc tini\nPin: release n=bullseye\nPin-Priority: 1001" \
            in source.command.replace("'\\''", "'"), "the engine's packages win, also as a downgrade"
        assert "Pin-Priority: 100\n" in source.command, "nothing else of Debian 11 is preferred"
    store = next(s for s in plan.steps if s.host == "store" and s.what == "apt source bullseye")
    assert "Package: consul\n" in store.command
    assert "security" not in text.split("apt source")[1].split("\n")[1], "the mirror, not the security archive"
    assert "https://" not in text, "every binary comes from Debian's archive"


@pytest.mark.parametrize(("engine", "pinned", "host"), [
    ("debian-13", "containerd docker-cli docker.io", "debian 12"),        # Debian 13's runc and tini need glibc 2.38
    ("debian-11", "containerd docker.io runc tini", "debian 12"),
    ("debian-12", None, "debian 12"),                                     # the host's own release: no extra source
])
def test_engine_field_on_vms_installs_that_release_pinned(engine: str, pinned: str | None, host: str) -> None:
    text = (ROOT + "/inventories/vagrant.yaml")
    inv = dataclasses.replace(load_inventory(text), packages="direct")
    inv = dataclasses.replace(inv, hosts=tuple(dataclasses.replace(h, engine=engine) if h.is_docker else h
                                               for h in inv.hosts))
    facts = {n: dataclasses.replace(f, os=host) for n, f in FRESH.items()}
    plan = plan_for("etcd", facts, inv)
    assert plan.problems == []
    sources = [s for s in plan.steps if s.host == "node1" and s.what.startswith("apt source")]
    install = next(s for s in plan.steps if s.host == "node1" and s.what.startswith("install"))
    if pinned is None:
        assert sources == [] and "docker.io" in install.what
        return
    (source,) = sources
    assert f"Package: {pinned}\n" in source.command
    assert all(p in install.what.split() for p in pinned.split())
    done = {n: dataclasses.replace(f, docker_package={"debian-13": "26.1.5+dfsg1-9+deb13u1+b1",
                                                      "debian-11": "20.10.5+dfsg1-1+deb11u2"}[engine],
                                   dockerd_version="x") for n, f in facts.items()}
    again = [s for s in plan_for("etcd", done, inv).changes if s.host == "node1" and "docker" in s.what]
    assert again == [], "installed once, present the next time"


def test_a_debian_engine_on_a_host_that_is_not_debian_is_refused() -> None:
    inv = parse_inventory("provider: static\nengine: debian-13\nhosts:\n"
                          "  node1: {roles: [docker], address: 192.0.2.21}\n"
                          "  node2: {roles: [docker], address: 192.0.2.22}\n"
                          "  store: {roles: [store], address: 192.0.2.23}\n", "i.yaml")
    plan = plan_for("etcd", {"node1": ProvisionFacts("node1", "ubuntu 24.04", True, apt_sources=SOURCES)}, inv)
    assert any("engine debian-13 is Debian 13's docker.io, and this host is not Debian (ubuntu 24.04)" in p
               for p in plan.problems), plan.problems


def installed(backend: str) -> dict[str, ProvisionFacts]:
    """The facts the same VMs report once the golden commands have run."""
    consul = backend.startswith("consul")   # a Consul store's docker hosts run Debian 11's docker.io
    docker = "20.10.5+dfsg1" if consul else "20.10.24+dfsg1"
    package = "20.10.5+dfsg1-1+deb11u2" if consul else "20.10.24+dfsg1-1+deb12u1+b6"
    tools = frozenset({"curl", "unzip", "iptables", "ca-certificates", "fping", "nsenter", "python3", "tcpdump"})
    return {
        "store": ProvisionFacts("store", "debian 12", True, etcd=backend == "etcd",
                                dockerd_version="20.10.24+dfsg1" if backend == "consul-image" else "",
                                consul_version="1.8.7" if backend == "consul" else "", tools=tools),
        "node1": ProvisionFacts("node1", "debian 12", True, dockerd_version=docker, engine_id="AAAA", tools=tools,
                                docker_package=package),
        "node2": ProvisionFacts("node2", "debian 12", True, dockerd_version=docker, engine_id="BBBB", tools=tools,
                                docker_package=package),
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
    facts = dict(FRESH, node1=ProvisionFacts("node1", "debian 12", True, dockerd_version="24.0.7"))
    kvstore = parse_playbook("name: t\noverlay: {control: kvstore}\nstore: {backend: etcd}\n" + NETS, "p.yaml", INV)
    assert any("[node1] Docker Engine 24.0.7 is installed: it has no cluster-store" in p
               for p in plan_provision(INV, kvstore, facts).problems)
    auto = plan_for("etcd", facts)
    assert not any("[node1]" in p for p in auto.problems), "auto: a current engine carries the overlay on swarm"
    assert any(s.host == "node1" and "the overlay runs on swarm mode" in s.reason for s in auto.steps)
    upstream = dict(FRESH, node1=ProvisionFacts("node1", "debian 12", True, dockerd_version="20.10.24",
                                                apt_sources=SOURCES))
    assert any("[node1] Docker 20.10.24 is installed outside Debian's packages; engine debian-11 installs Debian "
               "11's docker.io: remove it first" in p for p in plan_for("consul", upstream).problems)
    debian12 = dict(FRESH, node1=ProvisionFacts("node1", "debian 12", True, dockerd_version="20.10.24+dfsg1",
                                                docker_package="20.10.24+dfsg1-1+deb12u1+b6", apt_sources=SOURCES))
    plan = plan_for("consul", debian12)
    assert plan.problems == [], "Debian 12's docker.io (no Consul backend) gives way to Debian 11's, pinned"
    assert ("node1", "apt source bullseye") in [(s.host, s.what) for s in plan.changes]


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
