"""What a host needs installed for the playbook, as commands, given what is there (`labctl provision`).

Per store backend:
- etcd: docker hosts get Debian's docker.io (20.10, built with the etcd and ZooKeeper cluster-store backends); the
  store host gets etcd-server and etcd-client, and the distribution's own etcd.service is disabled (it would hold
  127.0.0.1:2380, which labctl's etcd uses; labctl runs the store as its own unit, labctl-etcd).
- consul: docker hosts get Debian 11's docker.io 20.10.5 (built with the Consul backend; Debian 12's is not), the
  store host Debian 11's consul 1.8.7, or Docker when the playbook runs Consul from an image.
Engines (the inventory's `engine:`): `debian-N` installs that release's docker.io (and containerd; runc and tini too
when the release is not newer than the host's, since Debian 13's need a newer glibc than Debian 12 has) from an apt
source for that release on the host's own Debian mirror, pinned so that only those packages come from it. Every
binary comes from Debian's archive, checked by apt against the archive's keyring.
Cloned boxes that carry the same /etc/docker/key.json have the same engine ID; all but the first get a new one.
Pure: facts in, steps out (a step without command is a no-op with its reason).
"""

from __future__ import annotations

import re
import shlex
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field

from labctl import engines
from labctl.engines import EngineSource
from labctl.facts import dialect
from labctl.model.inventory import Host, Inventory
from labctl.model.playbook import Playbook
from labctl.plan.controlplane import kvstore_refusal
from labctl.plan.lab import Step
from labctl.planes import PLANES, traits

APT = "DEBIAN_FRONTEND=noninteractive apt-get"
CONSUL_ENGINE = "debian-11"   # the one Debian engine built with Consul: what a consul store's docker hosts get
APT_DIR = "/etc/apt/sources.list.d"
PREF_DIR = "/etc/apt/preferences.d"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# Pinned packages of another release win over the host's own, also when that means a downgrade (Debian 11's
# docker.io 20.10.5 on a Debian 12 host); everything else of that release stays below the host's own (100 < 500).
PIN_ENGINE = 1001
PIN_OTHERS = 100


@dataclass(frozen=True)
class ProvisionFacts:
    name: str
    os: str = ""                       # "debian 12": ID and VERSION_ID of /etc/os-release (apt or not)
    systemd: bool = False
    dockerd_version: str = ""          # "20.10.24+dfsg1" (Debian) or "20.10.24" (upstream); "" when absent
    etcd: bool = False                 # /usr/bin/etcd and etcdctl present
    consul_version: str = ""           # "1.8.7"; "" when absent
    docker_package: str = ""           # the installed docker.io package's version ("20.10.5+dfsg1-1+deb11u2")
    distro_etcd_unit: bool = False     # Debian's etcd.service enabled or active
    engine_id: str = ""
    tools: frozenset[str] = field(default_factory=frozenset)   # of curl, unzip, iptables, ca-certificates, fping,
    #                      nsenter, python3, tcpdump, apparmor_parser; and apparmor-enabled when the kernel enforces it
    apt_sources: tuple[str, ...] = ()  # the URLs of the host's apt sources (for `packages: controller`)


@dataclass
class ProvisionPlan:
    steps: list[Step]
    problems: list[str]
    apt_hosts: list[str] = field(default_factory=list)   # hosts with an apt install step
    relay_from: set[str] = field(default_factory=set)    # packages: controller: the archive hosts to relay


    @property
    def changes(self) -> list[Step]:
        return [s for s in self.steps if s.command is not None]


# The only proxy apt is pointed at: the controller's, forwarded to the host's loopback over SSH.
APT_PROXY_RE = re.compile(r"http://127\.0\.0\.1:[0-9]{1,5}")


def engine_for(host: Host, backend: str | None) -> EngineSource:
    """The engine a docker host gets: its inventory `engine:`; with a Consul store and the system's engine, Debian
    11's (Debian's only docker.io with the Consul backend)."""
    name = host.engine
    if name == engines.SYSTEM and backend == "consul":
        name = CONSUL_ENGINE
    return engines.get(name)


def plan_provision(inv: Inventory, pb: Playbook, facts: dict[str, ProvisionFacts],
                   apt_proxy: dict[str, str] | None = None) -> ProvisionPlan:
    """apt_proxy: host -> the URL under which the controller serves that host's packages (packages: controller)."""
    plan = ProvisionPlan([], [])
    backend = pb.store.backend if pb.store is not None else None
    for h in inv.hosts:
        f = facts.get(h.name)
        if f is None:
            continue
        packages: list[str] = []
        pins: dict[str, set[str]] = {}               # another release's codename -> packages taken from it
        commands: list[tuple[str, str, str]] = []   # (what, reason, command) after the packages
        needs_docker = h.is_docker or (h.is_store and pb.store is not None and pb.store.image is not None)
        if needs_docker:
            _apparmor(f, packages)
        source = engine_for(h, backend) if h.is_docker else engines.get(engines.SYSTEM)
        if needs_docker and source.fetched:
            _debian_engine(plan, f, source, packages, pins)
        elif needs_docker:
            _docker_io(plan, f, packages, pb.control)
        if h.is_docker:
            _probe_tools(plan, f, packages)
        if h.is_store and backend == "etcd":
            _etcd(plan, f, packages, commands)
        if h.is_store and backend == "consul" and pb.store is not None and pb.store.image is None:
            _consul(plan, f, packages, pins)
        if packages and f.os.split()[:1] not in (["debian"], ["ubuntu"]):
            plan.problems.append(f"[{h.name}] needs {' '.join(packages)}, and labctl installs packages with apt on "
                                 f"Debian or Ubuntu only (this host: {f.os or 'unknown'}): install them yourself, or "
                                 "use the Vagrantfile's Debian 12 box")
        elif packages:
            proxy = (apt_proxy or {}).get(h.name)
            plan.apt_hosts.append(h.name)
            if inv.packages == "controller":
                _relay_sources(plan, f)
            for codename, pinned in sorted(pins.items()):
                url = mirror(f)
                if url is None:
                    plan.problems.append(f"[{h.name}] has no Debian mirror among its apt sources to take "
                                         f"{' '.join(sorted(pinned))} from Debian {codename}; add one")
                    continue
                plan.steps.append(Step(h.name, f"apt source {codename}", release_source(codename, url, pinned),
                                       f"{', '.join(sorted(pinned))} from Debian {codename}, pinned; nothing else "
                                       "of that release is preferred"))
            from_release = "".join(f"; {', '.join(sorted(p))} from Debian {c}" for c, p in sorted(pins.items()))
            plan.steps.append(Step(h.name, f"install {' '.join(packages)}", _apt(packages, proxy, bool(pins)),
                                   "from the distribution's packages" + from_release
                                   + (", through the controller" if proxy else "")))
        for what, reason, cmd in commands:
            plan.steps.append(Step(h.name, what, cmd, reason))
    _engine_ids(plan, inv, facts)
    return plan


def source_hosts(urls: Iterable[str], schemes: tuple[str, ...] = ("http", "https")) -> set[str]:
    """The host names of apt source URLs (`http://deb.debian.org/debian` -> deb.debian.org)."""
    hosts = set()
    for u in urls:
        parsed = urllib.parse.urlsplit(u)
        if parsed.scheme in schemes and parsed.hostname:
            hosts.add(parsed.hostname.lower())
    return hosts


def _relay_sources(plan: ProvisionPlan, f: ProvisionFacts) -> None:
    """packages: controller relays plain HTTP only (apt checks signatures; an HTTPS tunnel would hide the host)."""
    hosts = source_hosts(f.apt_sources, ("http",))
    if not hosts:
        plan.problems.append(f"[{f.name}] has no http:// apt source to fetch from through the controller (packages: "
                             "controller): add one to /etc/apt/sources.list, or set `packages: direct`")
    plan.relay_from |= hosts


# verify's fast probes run these on each docker host (fping into each container's network namespace), and trace
# captures with tcpdump; without them verify falls back to pings inside the containers and trace says what is
# missing, so they are installed where apt can, and never a blocker.
PROBE_TOOLS = (("fping", "fping"), ("nsenter", "util-linux"), ("python3", "python3-minimal"), ("tcpdump", "tcpdump"))


def _probe_tools(plan: ProvisionPlan, f: ProvisionFacts, packages: list[str]) -> None:
    wanted = [pkg for tool, pkg in PROBE_TOOLS if tool not in f.tools]
    if not wanted:
        return
    if f.os.split()[:1] in (["debian"], ["ubuntu"]):
        packages.extend(wanted)
    else:
        plan.steps.append(Step(f.name, "verify probes", None,
                               f"{' '.join(wanted)} not installed and no apt here: verify pings inside the "
                               "containers on this host (slower) and trace cannot capture; install them"))


def _apparmor(f: ProvisionFacts, packages: list[str]) -> None:
    """Where the kernel enforces AppArmor (Debian's does), dockerd loads its docker-default profile with
    apparmor_parser before every container start, and without it refuses to start containers ("AppArmor enabled on
    system but the docker-default profile could not be loaded"). docker.io only recommends apparmor, and labctl
    installs without recommends: found on the first real VMs."""
    if "apparmor-enabled" in f.tools and "apparmor_parser" not in f.tools:
        packages.append("apparmor")


def _apt(packages: list[str], proxy: str | None = None, downgrades: bool = False) -> str:
    apt = APT
    if proxy is not None:
        if not APT_PROXY_RE.fullmatch(proxy):
            raise ValueError(f"not a forwarded proxy URL: {proxy!r}")
        apt = f"{APT} -o Acquire::http::Proxy={proxy} -o Acquire::Retries=3"
    allow = " --allow-downgrades" if downgrades else ""   # a pinned older release (Debian 11's engine on 12)
    names = " ".join(sorted(set(packages)))
    # the exact versions installed, for the run's report (executors.steps reads lines with this prefix)
    said = f"dpkg-query -W -f='labctl-report: installed ${{Package}} ${{Version}}\\n' {names}"
    return f"{apt} update -q && {apt} install -y -q --no-install-recommends{allow} {names} && {said}"


def _docker_io(plan: ProvisionPlan, f: ProvisionFacts, packages: list[str], control: str) -> None:
    """control: the playbook's plane; one that needs the cluster store needs an engine that still has it."""
    store_plane = control in PLANES and traits(control).store == "required"
    if not f.dockerd_version:
        packages.append("docker.io")
    elif store_plane and kvstore_refusal(f.dockerd_version, "etcd", False):
        plan.problems.append(f"[{f.name}] Docker Engine {f.dockerd_version} is installed: it has no cluster-store "
                             f"({dialect.CLUSTER_STORE_REMOVED}). "
                             "Use `overlay: {control: swarm}` (or auto), a fresh VM, or remove it "
                             "and let labctl install docker.io 20.10")
    elif not store_plane and kvstore_refusal(f.dockerd_version, "etcd", False):
        plan.steps.append(Step(f.name, "docker", None, f"Docker {f.dockerd_version} present (no cluster store: "
                                                       "the overlay runs on swarm mode)"))
    else:
        plan.steps.append(Step(f.name, "docker", None, f"Docker {f.dockerd_version} present"))


def _etcd(plan: ProvisionPlan, f: ProvisionFacts, packages: list[str], commands: list[tuple[str, str, str]]) -> None:
    if not f.etcd:
        packages += ["etcd-server", "etcd-client"]
    else:
        plan.steps.append(Step(f.name, "etcd", None, "etcd and etcdctl present"))
    if f.systemd and (f.distro_etcd_unit or not f.etcd):
        commands.append(("disable etcd.service", "the distribution's etcd would hold 127.0.0.1:2380; labctl runs "
                         "the store as its own unit (labctl-etcd)", "systemctl disable --now etcd.service"))


def _consul(plan: ProvisionPlan, f: ProvisionFacts, packages: list[str], pins: dict[str, set[str]]) -> None:
    """Debian 11's consul package (Debian 12 and 13 have none), from the host's own release where it has it."""
    if f.consul_version:
        plan.steps.append(Step(f.name, "consul", None, f"Consul {f.consul_version} present"))
        return
    src = engines.store_tool_source("consul")
    assert src is not None and src.release is not None and src.version_id is not None
    packages.append("consul")
    if host_release(f) != src.version_id:
        pins.setdefault(src.release, set()).add("consul")


def host_release(f: ProvisionFacts) -> str | None:
    """VERSION_ID of a Debian host ("12"); None on anything else."""
    words = f.os.split()
    return words[1] if len(words) == 2 and words[0] == "debian" else None


def mirror(f: ProvisionFacts) -> str | None:
    """The host's own Debian mirror (its first apt source that is not the security archive)."""
    return next((u.rstrip("/") for u in f.apt_sources if u.startswith(("http://", "https://")) and
                 "security" not in u), None)


def release_source(codename: str, url: str, pinned: set[str]) -> str:
    """An apt source for another Debian release, signed by the archive's keyring, and a pin that takes only the
    named packages from it (PIN_ENGINE: also a downgrade) and leaves the rest of that release below the host's."""
    if not re.fullmatch(r"[a-z]+", codename) or not all(re.fullmatch(r"[a-z0-9][a-z0-9.+-]*", p) for p in pinned):
        raise ValueError(f"bad release or package names: {codename!r} {sorted(pinned)!r}")
    if not re.fullmatch(r"https?://[A-Za-z0-9.:/_~+-]+", url):
        raise ValueError(f"not an archive URL: {url!r}")
    line = f"deb [signed-by={KEYRING}] {url} {codename} main\n"
    pref = (f"# written by labctl: only these packages come from Debian {codename}\n"
            f"Package: {' '.join(sorted(pinned))}\nPin: release n={codename}\nPin-Priority: {PIN_ENGINE}\n\n"
            f"Package: *\nPin: release n={codename}\nPin-Priority: {PIN_OTHERS}\n")
    return (f"printf %s {shlex.quote(line)} > {APT_DIR}/labctl-{codename}.list && "
            f"printf %s {shlex.quote(pref)} > {PREF_DIR}/labctl-{codename}.pref")


def _debian_engine(plan: ProvisionPlan, f: ProvisionFacts, src: EngineSource, packages: list[str],
                   pins: dict[str, set[str]]) -> None:
    assert src.version_id is not None and src.release is not None
    own = host_release(f)
    if own is None:
        plan.problems.append(f"[{f.name}] engine {src.name} is Debian {src.version_id}'s docker.io, and this host "
                             f"is not Debian ({f.os or 'unknown'}): use `engine: system` for it")
        return
    if f"deb{src.version_id}u" in f.docker_package or (own == src.version_id and f.docker_package):
        plan.steps.append(Step(f.name, "docker", None, f"Debian {src.version_id}'s docker.io {f.docker_package} "
                                                       "present"))
        return
    if f.dockerd_version and not f.docker_package:
        plan.problems.append(f"[{f.name}] Docker {f.dockerd_version} is installed outside Debian's packages; "
                             f"engine {src.name} installs Debian {src.version_id}'s docker.io: remove it first")
        return
    wanted = [p for p in src.packages if p not in src.helpers_of_newer(own)]
    packages.extend(wanted)
    if own != src.version_id:
        pins.setdefault(src.release, set()).update(wanted)


def _engine_ids(plan: ProvisionPlan, inv: Inventory, facts: dict[str, ProvisionFacts]) -> None:
    """Boxes cloned with Docker inside share the engine ID (Engine 20.10 derives it from /etc/docker/key.json, 23 and
    later keep it in /var/lib/docker/engine-id); the first keeps it."""
    seen: dict[str, str] = {}
    for h in inv.docker_hosts:
        f = facts.get(h.name)
        if f is None or not f.engine_id:
            continue
        if f.engine_id not in seen:
            seen[f.engine_id] = h.name
            continue
        cmd = ("systemctl stop docker.service && rm -f /etc/docker/key.json /var/lib/docker/engine-id && "
               "systemctl start docker.service"
               if f.systemd else None)
        plan.steps.append(Step(h.name, "new engine ID", cmd, f"same engine ID as {seen[f.engine_id]} "
                               "(cloned box): key.json and engine-id removed, dockerd makes a new one"))
