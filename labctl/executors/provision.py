"""`labctl provision` (and the first step of `up` on VMs): install what plan.provision says, hosts in parallel."""

from __future__ import annotations

from fabric import Connection

from labctl.executors.aptproxy import served_packages
from labctl.executors.facts import ask
from labctl.executors.remote import Hosts
from labctl.executors.steps import PreflightRefused, Report, run_steps
from labctl.facts import Answers, answers, fact, script
from labctl.model.inventory import Inventory
from labctl.model.playbook import Playbook
from labctl.plan.provision import ProvisionFacts, plan_provision
from labctl.ui import Progress


def _text(t: str) -> str:
    return t.strip()


NAMES = ("os", "init", "dockerd", "etcd", "consul", "etcd-unit", "engine-id", "tools", "apt-sources",
         "docker-package")
COMMANDS = (
    '. /etc/os-release 2>/dev/null; echo "$ID $VERSION_ID"',
    "test -d /run/systemd/system && echo systemd",
    "dockerd --version 2>/dev/null || /usr/local/bin/dockerd --version 2>/dev/null",
    "test -x /usr/bin/etcd && command -v etcdctl",
    "consul version 2>/dev/null | head -n 1",
    "systemctl is-enabled etcd.service 2>/dev/null; systemctl is-active etcd.service 2>/dev/null",
    "docker info --format '{{.ID}}' 2>/dev/null",
    "for t in curl unzip iptables fping nsenter python3 tcpdump apparmor_parser; do "
    "command -v $t >/dev/null && echo $t; done; "
    "test -f /etc/ssl/certs/ca-certificates.crt && echo ca-certificates; "
    "grep -qx Y /sys/module/apparmor/parameters/enabled 2>/dev/null && echo apparmor-enabled",
    "cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null "
    "| grep -v '^[[:space:]]*#' | grep -oE 'https?://[^[:space:]]+' | sort -u",
    "dpkg-query -W -f='${Version}' docker.io 2>/dev/null",
)
FACTS = tuple(fact(f"provision.{n}", c, _text) for n, c in zip(NAMES, COMMANDS, strict=True))
FACTS_SCRIPT = script(FACTS)


def from_answers(a: Answers) -> ProvisionFacts:
    os_line, init, dockerd, etcd, consul, etcd_unit, engine_id, tools, sources, docker_package = (
        a[f] for f in FACTS)
    version = dockerd.split()[2].rstrip(",") if dockerd.startswith("Docker version ") else ""
    consul_version = consul.split()[1].lstrip("v") if consul.startswith("Consul v") else ""
    unit_words = etcd_unit.split()
    return ProvisionFacts(name=a.host, os=os_line, systemd=init == "systemd", dockerd_version=version,
                          etcd=bool(etcd), consul_version=consul_version,
                          distro_etcd_unit="enabled" in unit_words or "active" in unit_words,
                          engine_id=engine_id, tools=frozenset(tools.split()), apt_sources=tuple(sources.split()),
                          docker_package=docker_package)


def parse_provision_facts(out: str, name: str) -> ProvisionFacts:
    """A host's output of FACTS_SCRIPT (captured) as ProvisionFacts."""
    return from_answers(answers(name, FACTS, out))


def provision_facts(conn: Connection, name: str) -> ProvisionFacts:
    return from_answers(ask(conn, name, FACTS))


def provision(inv: Inventory, pb: Playbook, hosts: Hosts, progress: Progress, report: Report) -> None:
    """Refuses (exit 2) before any change when a host cannot be brought to what the playbook needs."""
    progress.step("all", "provision: what is installed (Docker, store, tools)")
    facts = hosts.each(lambda n, c: provision_facts(c, n), [h.name for h in inv.hosts], step="provision facts")
    plan = plan_provision(inv, pb, facts)
    if plan.problems:
        raise PreflightRefused(plan.problems)
    for s in plan.steps:
        if s.command is None:
            progress.step(s.host, f"{s.what}: {s.reason}")
    if inv.packages != "controller" or not plan.apt_hosts:
        run_steps(hosts, plan.changes, progress, report, "provision")
        return
    progress.step("all", f"packages through the controller, over SSH, from {', '.join(sorted(plan.relay_from))}")
    with served_packages({h: hosts.conn(h) for h in plan.apt_hosts}, plan.relay_from) as (proxies, served):
        plan = plan_provision(inv, pb, facts, proxies)
        try:
            run_steps(hosts, plan.changes, progress, report, "provision")
        finally:
            progress.step("all", f"the controller relayed {served.requests} requests, "
                                 f"{served.bytes / 1e6:.1f} MB" + (f"; not relayed: {'; '.join(served.refused[:3])}"
                                                                    if served.refused else ""))
