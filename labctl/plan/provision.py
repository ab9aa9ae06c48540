"""What a host needs installed for the playbook, as commands, given what is there (`labctl provision`).

Per store backend:
- etcd: docker hosts get Debian's docker.io (20.10, built with the etcd and ZooKeeper cluster-store backends); the
  store host gets etcd-server and etcd-client, and the distribution's own etcd.service is disabled (it would hold
  127.0.0.1:2380, which labctl's etcd uses; labctl runs the store as its own unit, labctl-etcd).
- consul: docker hosts get upstream Docker CE 20.10.24 static binaries (Debian's docker.io has no Consul backend),
  pinned by version and SHA-256, with a systemd unit; the store host gets the pinned Consul release binary, or
  Docker when the playbook runs Consul from an image.
Cloned boxes that carry the same /etc/docker/key.json have the same engine ID; all but the first get a new one.
Pure: facts in, steps out (a step without command is a no-op with its reason).
"""

from __future__ import annotations

import re
import shlex
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field

from labctl.model.inventory import Inventory
from labctl.model.playbook import Playbook
from labctl.plan.controlplane import kvstore_refusal
from labctl.plan.controlplane.kvstore import CONSUL_BIN
from labctl.plan.lab import Step
from labctl.plan.lock import PRIVATE_DIR

DOCKER_CE_VERSION = "20.10.24"
DOCKER_CE_URL = f"https://download.docker.com/linux/static/stable/x86_64/docker-{DOCKER_CE_VERSION}.tgz"
# Not pinned in the repository: download.docker.com publishes no checksum for its static archives, and the
# machine labctl was written on cannot reach it. Set LABCTL_DOCKER_CE_SHA256 to the archive's SHA-256, checked on a
# trusted machine (`curl -fsSLO URL && sha256sum docker-20.10.24.tgz`); provisioning refuses the Consul path
# without it rather than install an unchecked binary.
DOCKER_CE_SHA256: str | None = None
CONSUL_VERSION = "1.15.4"
CONSUL_URL = f"https://releases.hashicorp.com/consul/{CONSUL_VERSION}/consul_{CONSUL_VERSION}_linux_amd64.zip"
# As published in the release's consul_1.15.4_SHA256SUMS (and pinned in HashiCorp's Homebrew formula).
CONSUL_SHA256 = "f0d683ec9589884873f12a71dfb2fe0a03f0440f9d63bc30676f397919184c9a"
APT = "DEBIAN_FRONTEND=noninteractive apt-get"

DOCKER_UNIT = f"""[Unit]
Description=Docker Engine {DOCKER_CE_VERSION} (static binaries, installed by labctl)
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
ExecStart=/usr/local/bin/dockerd
ExecReload=/bin/kill -s HUP $MAINPID
LimitNOFILE=1048576
Delegate=yes
KillMode=process
Restart=on-failure

[Install]
WantedBy=multi-user.target
"""


@dataclass(frozen=True)
class ProvisionFacts:
    name: str
    os: str = ""                       # "debian 12": ID and VERSION_ID of /etc/os-release (apt or not)
    systemd: bool = False
    dockerd_version: str = ""          # "20.10.24+dfsg1" (Debian) or "20.10.24" (upstream); "" when absent
    etcd: bool = False                 # /usr/bin/etcd and etcdctl present
    consul_version: str = ""           # "1.15.4"; "" when absent
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


def plan_provision(inv: Inventory, pb: Playbook, facts: dict[str, ProvisionFacts],
                   docker_ce_sha256: str | None = DOCKER_CE_SHA256,
                   apt_proxy: dict[str, str] | None = None) -> ProvisionPlan:
    """apt_proxy: host -> the URL under which the controller serves that host's packages (packages: controller)."""
    plan = ProvisionPlan([], [])
    backend = pb.store.backend if pb.store is not None else None
    upstream_docker = backend == "consul"
    for h in inv.hosts:
        f = facts.get(h.name)
        if f is None:
            continue
        packages: list[str] = []
        commands: list[tuple[str, str, str]] = []   # (what, reason, command) after the packages
        needs_docker = h.is_docker or (h.is_store and pb.store is not None and pb.store.image is not None)
        if needs_docker:
            _apparmor(f, packages)
        if needs_docker and upstream_docker and h.is_docker:
            _docker_ce(plan, f, packages, commands, docker_ce_sha256)
        elif needs_docker:
            _docker_io(plan, f, packages, pb.control)
        if h.is_docker:
            _probe_tools(plan, f, packages)
        if h.is_store and backend == "etcd":
            _etcd(plan, f, packages, commands)
        if h.is_store and backend == "consul" and pb.store is not None and pb.store.image is None:
            _consul(plan, f, packages, commands)
        if packages and f.os.split()[:1] not in (["debian"], ["ubuntu"]):
            plan.problems.append(f"[{h.name}] needs {' '.join(packages)}, and labctl installs packages with apt on "
                                 f"Debian or Ubuntu only (this host: {f.os or 'unknown'}): install them yourself, or "
                                 "use the Vagrantfile's Debian 12 box")
        elif packages:
            proxy = (apt_proxy or {}).get(h.name)
            plan.apt_hosts.append(h.name)
            if inv.packages == "controller":
                _relay_sources(plan, f)
            plan.steps.append(Step(h.name, f"install {' '.join(packages)}", _apt(packages, proxy),
                                   "from the distribution's packages" + (", through the controller" if proxy else "")))
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


def _apt(packages: list[str], proxy: str | None = None) -> str:
    apt = APT
    if proxy is not None:
        if not APT_PROXY_RE.fullmatch(proxy):
            raise ValueError(f"not a forwarded proxy URL: {proxy!r}")
        apt = f"{APT} -o Acquire::http::Proxy={proxy} -o Acquire::Retries=3"
    return f"{apt} update -q && {apt} install -y -q --no-install-recommends {' '.join(sorted(set(packages)))}"


def _docker_io(plan: ProvisionPlan, f: ProvisionFacts, packages: list[str], control: str) -> None:
    if not f.dockerd_version:
        packages.append("docker.io")
    elif control == "kvstore" and kvstore_refusal(f.dockerd_version, "etcd", False):
        plan.problems.append(f"[{f.name}] Docker Engine {f.dockerd_version} is installed: it has no cluster-store "
                             "(removed in 23.0). Use `overlay: {control: swarm}` (or auto), a fresh VM, or remove it "
                             "and let labctl install docker.io 20.10")
    elif control != "kvstore" and kvstore_refusal(f.dockerd_version, "etcd", False):
        plan.steps.append(Step(f.name, "docker", None, f"Docker {f.dockerd_version} present (no cluster store: "
                                                       "the overlay runs on swarm mode)"))
    else:
        plan.steps.append(Step(f.name, "docker", None, f"Docker {f.dockerd_version} present"))


def _docker_ce(plan: ProvisionPlan, f: ProvisionFacts, packages: list[str], commands: list[tuple[str, str, str]],
               sha256: str | None) -> None:
    if f.dockerd_version == DOCKER_CE_VERSION:
        plan.steps.append(Step(f.name, "docker", None, f"Docker CE {DOCKER_CE_VERSION} (upstream) present"))
        return
    if f.dockerd_version:
        plan.problems.append(f"[{f.name}] Docker {f.dockerd_version} is installed, and the Consul store needs "
                             f"upstream Docker CE {DOCKER_CE_VERSION} (Debian's docker.io has no Consul backend): "
                             "remove it (`apt-get purge docker.io`), or use `store: {backend: etcd}`")
        return
    if not sha256:
        plan.problems.append(f"[{f.name}] the Consul store needs Docker CE {DOCKER_CE_VERSION} static binaries, and "
                             "their SHA-256 is not pinned here: set LABCTL_DOCKER_CE_SHA256 to the checksum of "
                             f"{DOCKER_CE_URL}, checked on a trusted machine (or use `store: {{backend: etcd}}`)")
        return
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        plan.problems.append(f"LABCTL_DOCKER_CE_SHA256 must be the 64 lowercase hexadecimal digits `sha256sum` prints "
                             f"for {DOCKER_CE_URL}, not {sha256[:80]!r}")
        return
    packages += [t for t in ("curl", "ca-certificates", "iptables") if t not in f.tools]
    fetch = private_download(DOCKER_CE_URL, sha256, "docker.tgz",
                             'tar -xzf "$d/docker.tgz" --strip-components 1 -C /usr/local/bin')
    unit = (f"cat > /etc/systemd/system/docker.service <<'LABCTL_EOF'\n{DOCKER_UNIT}LABCTL_EOF\n"
            "systemctl daemon-reload && systemctl enable --now docker.service")
    commands.append((f"install Docker CE {DOCKER_CE_VERSION}", "static binaries, checked against the pinned "
                     "SHA-256 (the Consul store needs upstream Docker)", fetch))
    commands.append(("docker.service", "systemd unit for the static dockerd", unit))


def _etcd(plan: ProvisionPlan, f: ProvisionFacts, packages: list[str], commands: list[tuple[str, str, str]]) -> None:
    if not f.etcd:
        packages += ["etcd-server", "etcd-client"]
    else:
        plan.steps.append(Step(f.name, "etcd", None, "etcd and etcdctl present"))
    if f.systemd and (f.distro_etcd_unit or not f.etcd):
        commands.append(("disable etcd.service", "the distribution's etcd would hold 127.0.0.1:2380; labctl runs "
                         "the store as its own unit (labctl-etcd)", "systemctl disable --now etcd.service"))


def _consul(plan: ProvisionPlan, f: ProvisionFacts, packages: list[str],
            commands: list[tuple[str, str, str]]) -> None:
    if f.consul_version == CONSUL_VERSION:
        plan.steps.append(Step(f.name, "consul", None, f"Consul {CONSUL_VERSION} present"))
        return
    packages += [t for t in ("curl", "unzip", "ca-certificates") if t not in f.tools]
    commands.append((f"install Consul {CONSUL_VERSION}", "pinned release binary, checked against its SHA-256",
                     private_download(CONSUL_URL, CONSUL_SHA256, "consul.zip",
                                      f'unzip -o -q "$d/consul.zip" consul -d {CONSUL_BIN.rsplit("/", 1)[0]}')))


def private_download(url: str, sha256: str, name: str, then: str) -> str:
    """Download into a new directory under labctl's root-only directory (a name no other user can predict or
    prepare), check the pinned SHA-256, run `then` (which finds the file as "$d/NAME"), and remove the directory
    whatever happened."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256) or not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise ValueError(f"bad checksum or file name for {url}")
    return (f"mkdir -p {PRIVATE_DIR} && chmod 700 {PRIVATE_DIR} && "
            f"d=$(mktemp -d {PRIVATE_DIR}/download.XXXXXXXX) && trap 'rm -rf \"$d\"' EXIT && "
            f'curl -fsSL -o "$d/{name}" {shlex.quote(url)} && '
            f'echo "{sha256}  $d/{name}" | sha256sum -c - && {then}')


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
