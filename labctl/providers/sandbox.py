"""Sandbox provider: several real Docker hosts on one Linux machine, each one a tree of namespaces.

A host is a PID 1 started by `unshare` with its own mount, UTS, network and PID namespaces; its /run is a
fresh tmpfs and /var/lib/docker, /etc/docker, /var/lib/labctl, /run/labctl and /root are bind mounts of per-host
directories under the lab's state directory. Hosts sit on a Linux bridge inside a network namespace of its own
(the lab switch); the controller reaches them through one veth into that switch. Nothing routes out: hosts get
no default route and no link to the machine's interfaces. Killing a host's PID 1 ends every process of that host and
frees its veth, so teardown is total. Every object carries the lab name (see plan.sandbox.Names) so that
leftovers of a crashed run can be found and removed by name and PID, never by pattern-killing.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from labctl import engines
from labctl.errors import LabctlError, PrerequisiteError, Problem, ValidationError
from labctl.executors import enginecache, local
from labctl.executors.dockerhost import sandbox_dockerd
from labctl.executors.enginecache import Unpacked
from labctl.executors.remote import BECOME_PASSWORD
from labctl.executors.services import Service
from labctl.model.inventory import Host, Inventory, sandbox_addresses
from labctl.plan.sandbox import Action, HostFacts, Names, SandboxFacts, access_signature, plan_sandbox
from labctl.providers import sandbox_access
from labctl.providers.base import Endpoint, Provider
from labctl.ui import Progress

STATE_ENV = "LABCTL_STATE_DIR"
DEFAULT_STATE_ROOT = "/var/lib/labctl-sandbox"
HOST_DATA_DIR = "/var/lib/labctl"  # per-host inside each sandbox host (store data, daemon.json backups)
CGROUP_ROOT = "/sys/fs/cgroup"

# PID 1 of a sandbox host, run as `exec -a MARKER bash host-init.sh HOSTDIR NAME`: argv[0] is the marker.
HOST_INIT = r"""#!/bin/bash
# PID 1 of a labctl sandbox host (written by labctl; see labctl/providers/sandbox.py)
set -eu
hostdir=$1; name=$2
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/labctl /run/sshd /run/lock /run/.cgroup
mount --bind "$hostdir/run" /run/labctl
mount --bind "$hostdir/docker" /var/lib/docker
mount --bind "$hostdir/etc-docker" /etc/docker
mount --bind "$hostdir/data" /var/lib/labctl
# Its own root home, as on a fresh machine: the machine's ~/.bashrc (which bash sources for every ssh command)
# stays out of the lab, with its cost (pyenv init alone added 120 ms per command here) and its side effects.
mount --bind "$hostdir/home" /root
# A login user besides root (inventory `sandbox.login_user`): the host's own account files and sudoers, and a
# home on the host's own /home.
for f in passwd group shadow sudoers hosts; do
    if [ -f "$hostdir/etc/$f" ]; then mount --bind "$hostdir/etc/$f" "/etc/$f"; fi
done
if [ -f "$hostdir/login" ]; then
    read -r login uid < "$hostdir/login"
    mount -t tmpfs -o mode=0755 tmpfs /home
    mkdir -p "/home/$login/.ssh"
    cp "$hostdir/login-keys" "/home/$login/.ssh/authorized_keys"
    chown -R "$uid:$uid" "/home/$login"
    chmod 700 "/home/$login/.ssh"
fi
mount -t proc proc /proc
# A fresh sysfs shows this network namespace's interfaces; keep the cgroup tree that runc needs.
mount --rbind /sys/fs/cgroup /run/.cgroup
mount -t sysfs sysfs /sys
mount --move /run/.cgroup /sys/fs/cgroup
rmdir /run/.cgroup
hostname "$name"
ip link set lo up
echo ready > "$hostdir/ready"
trap 'exit 0' TERM INT
while :; do sleep 3600 & wait $! || :; done
"""

SSHD_CONFIG = """\
# sshd of the sandbox hosts of lab {lab} (written by labctl)
Port 22
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile {authorized_keys} .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
PrintLastLog no
MaxStartups 200:30:400
MaxSessions 100
LogLevel ERROR
Subsystem sftp internal-sftp
"""

REQUIRED_BINARIES = ("unshare", "nsenter", "ip", "ssh-keygen", "bash", "start-stop-daemon")
APT_HINT = ("install the sandbox prerequisites: apt-get install docker.io openssh-server iproute2 iptables "
            "busybox-static util-linux (or run `make lab`, which does it)")


def state_root() -> str:
    return os.environ.get(STATE_ENV, DEFAULT_STATE_ROOT)


@dataclass(frozen=True)
class LabPaths:
    lab: str
    root: str

    @property
    def dir(self) -> str:
        return os.path.join(self.root, self.lab)

    def file(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def host_dir(self, host: str) -> str:
        return os.path.join(self.dir, "hosts", host)

    @property
    def state(self) -> str:
        return self.file("lab.json")

    @property
    def key(self) -> str:
        return self.file("id_ed25519")

    @property
    def known_hosts(self) -> str:
        return self.file("known_hosts")

    @property
    def ssh_config(self) -> str:
        return self.file("ssh_config")


def paths_for(lab: str) -> LabPaths:
    return LabPaths(lab, state_root())


# ---------------------------------------------------------------- facts


def existing_labs() -> dict[str, str]:
    """name -> subnet of every sandbox lab with a state file on this machine."""
    labs: dict[str, str] = {}
    root = state_root()
    if not os.path.isdir(root):
        return labs
    for name in sorted(os.listdir(root)):
        state = read_state(LabPaths(name, root))
        if state and "subnet" in state:
            labs[name] = state["subnet"]
    return labs


def read_state(paths: LabPaths) -> dict | None:
    try:
        with open(paths.state, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_state(paths: LabPaths, state: dict) -> None:
    """Atomically, through a temporary file with a unique name (a killed run never leaves a half-written state)."""
    fd, tmp = tempfile.mkstemp(prefix=".lab.json.", dir=os.path.dirname(paths.state))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(state, fh, indent=2, sort_keys=True)
        os.replace(tmp, paths.state)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


class SandboxLocked(LabctlError):
    """Another labctl on this machine is building or removing the same sandbox lab. Exit 2: nothing was changed."""

    exit_code = 2


@contextlib.contextmanager
def state_lock(lab: str, command: str, wait: int, progress: Progress) -> Iterator[None]:
    """flock on <state root>/.<lab>.lock for the whole `sandbox up`/`down`: the kernel drops it when the process
    dies, so a killed run never blocks the next. The file names its holder, for the refusal message."""
    root = state_root()
    os.makedirs(root, mode=0o700, exist_ok=True)
    path = os.path.join(root, f".{lab}.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + max(0, wait)
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = os.pread(fd, 500, 0).decode(errors="replace").strip() or "another labctl run"
                if time.monotonic() >= deadline:
                    raise SandboxLocked(f"sandbox lab {lab} is locked by {holder}; nothing was changed",
                                        hint="let that run finish, or pass --wait SECONDS") from None
                if not announced:
                    progress.step(lab, f"waiting up to {wait}s for the sandbox lock held by {holder}")
                    announced = True
                time.sleep(0.2)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"`labctl {command}` (pid {os.getpid()} on {socket.gethostname()}, since {now})".encode(), 0)
        yield
    finally:
        os.close(fd)   # releases the flock


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return [p.decode(errors="replace") for p in fh.read().split(b"\0") if p]
    except OSError:
        return []


def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def marker_processes(prefix: str) -> dict[int, str]:
    """PIDs whose argv[0] starts with prefix (our hosts' PID 1), mapped to the full marker.

    A fork of PID 1 (its shell loop forking `sleep`) briefly carries the same argv; it is skipped.
    """
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            argv = _cmdline(int(entry))
            if argv and argv[0].startswith(prefix):
                found[int(entry)] = argv[0]
    return {pid: m for pid, m in found.items() if found.get(_ppid(pid)) != m}


def netns_exists(name: str) -> bool:
    return os.path.exists(f"/run/netns/{name}")


def link_exists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")


def root_links(prefix: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir("/sys/class/net") if n.startswith(prefix))
    except OSError:
        return []


def cgroup_dirs(prefix: str, max_depth: int = 4) -> list[str]:
    """Cgroup directories named with prefix in any hierarchy (dockerd's --cgroup-parent for our hosts)."""
    found: list[str] = []
    if not os.path.isdir(CGROUP_ROOT):
        return found
    base_depth = CGROUP_ROOT.rstrip("/").count("/")
    for top, dirs, _ in os.walk(CGROUP_ROOT):
        depth = top.count("/") - base_depth
        for d in list(dirs):
            if d.startswith(prefix):
                found.append(os.path.join(top, d))
                dirs.remove(d)
        if depth >= max_depth:
            dirs[:] = []
    return found


def host_cgroup_dirs(lab: str, host: str) -> list[str]:
    """Exactly this host's cgroups: labctl-LAB-node1 must not take labctl-LAB-node10 (seen with 16 hosts: node1's
    teardown waited on node10..node16's live cgroups for minutes)."""
    name = Names(lab).cgroup(host)
    return [d for d in cgroup_dirs(name) if os.path.basename(d) == name]


def lab_cgroup_dirs(lab: str) -> list[str]:
    """The lab's cgroups, not those of another lab whose name extends this one's (lab 'a' vs lab 'a-b')."""
    prefix = Names(lab).cgroup_prefix
    others = [Names(o).cgroup_prefix for o in existing_labs() if o != lab and Names(o).cgroup_prefix.startswith(prefix)]
    return [d for d in cgroup_dirs(prefix) if not any(os.path.basename(d).startswith(o) for o in others)]


def tcp_open(address: str, port: int = 22, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def gather_facts(inv: Inventory) -> SandboxFacts:
    names = Names(inv.name)
    paths = paths_for(inv.name)
    state = read_state(paths)
    procs = marker_processes(names.marker_prefix)
    facts = SandboxFacts(state_subnet=state.get("subnet") if state else None)
    facts.switch = netns_exists(names.switch_netns) and link_exists(names.controller_if)
    recorded = (state or {}).get("hosts", {})
    for name, info in recorded.items():
        pid = info.get("pid")
        running = bool(pid) and procs.get(pid) == names.marker(name)
        addr = info.get("address")
        hidden = running and bool(addr) and "behind=" in info.get("access", "")
        sshd = running and bool(addr) and (sandbox_access.sshd_answers_inside(pid, addr) if hidden
                                           else tcp_open(addr))
        facts.hosts[name] = HostFacts(name=name, running=running, address=addr, roles=tuple(info.get("roles", ())),
                                      sshd=sshd, engine=info.get("engine", engines.SYSTEM),
                                      access=info.get("access", ""))
    for pid, marker in procs.items():
        host = marker[len(names.marker_prefix):]
        if recorded.get(host, {}).get("pid") != pid:
            facts.stray_hosts.append(host)
    return facts


# ---------------------------------------------------------------- checks before touching anything


def check_prerequisites(inv: Inventory) -> None:
    if os.geteuid() != 0:
        raise PrerequisiteError("sandbox hosts need root (namespaces, veths, mounts)", hint="run as root")
    needed = list(REQUIRED_BINARIES)
    missing = [b for b in needed if shutil.which(b) is None]
    if not os.access("/usr/sbin/sshd", os.X_OK):
        missing.append("/usr/sbin/sshd")
    system_engine = any(h.engine == engines.SYSTEM for h in inv.docker_hosts)
    if system_engine and not os.access("/usr/sbin/dockerd", os.X_OK) and shutil.which("dockerd") is None:
        missing.append("dockerd (or give the docker hosts an `engine:` from Debian's archive, see `labctl engines`)")
    if missing:
        raise PrerequisiteError(f"missing on this machine: {', '.join(missing)}", hint=APT_HINT)
    sandbox_access.check_prerequisites(inv)


def check_subnet_free(inv: Inventory) -> None:
    """Refuse a subnet that any route of this machine already covers (other than this lab's own veth)."""
    assert inv.subnet is not None
    names = Names(inv.name)
    routes = json.loads(local.output(["ip", "-j", "-4", "route", "show", "table", "all"]) or "[]")
    problems = []
    for r in routes:
        dst, dev = r.get("dst", ""), r.get("dev", "")
        if dst in ("default", "") or dev == names.controller_if or r.get("type") in ("broadcast", "local"):
            continue
        try:
            net = ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False)
        except ValueError:
            continue
        if net.overlaps(inv.subnet):
            problems.append(Problem(inv.source, "underlay.subnet",
                                    f"{inv.subnet} overlaps route {dst} dev {dev} on this machine; "
                                    "choose a free range (198.18.0.0/15 is reserved for benchmarking)", "conflict"))
    if problems:
        raise ValidationError(problems)


# ---------------------------------------------------------------- building


def _ip_batch(commands: Iterable[str], netns_pid: int | None = None) -> None:
    prefix = ["nsenter", "--target", str(netns_pid), "--net", "--"] if netns_pid else []
    local.run([*prefix, "ip", "-batch", "-"], input=("\n".join(commands) + "\n").encode())


def create_switch(inv: Inventory) -> None:
    assert inv.subnet is not None
    n = Names(inv.name)
    local.run(["ip", "netns", "add", n.switch_netns])
    local.run(["ip", "link", "add", n.controller_if, "type", "veth", "peer", "name", n.controller_peer,
               "netns", n.switch_netns])
    local.run(["ip", "-n", n.switch_netns, "-batch", "-"], input=(
        f"link set lo up\nlink add {n.bridge} type bridge\nlink set {n.bridge} up\n"
        f"link set {n.controller_peer} master {n.bridge} up\n").encode())
    _ip_batch([f"addr add {inv.controller_address}/{inv.subnet.prefixlen} dev {n.controller_if}",
               f"link set {n.controller_if} up"])


def ensure_lab_files(inv: Inventory, paths: LabPaths) -> None:
    os.makedirs(os.path.join(paths.dir, "hosts"), mode=0o700, exist_ok=True)
    if not os.path.exists(paths.key):
        local.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"labctl-{inv.name}", "-f", paths.key])
    shutil.copyfile(paths.key + ".pub", paths.file("authorized_keys"))
    with open(paths.file("host-init.sh"), "w", encoding="utf-8") as fh:
        fh.write(HOST_INIT)
    with open(paths.file("sshd_config"), "w", encoding="utf-8") as fh:
        fh.write(SSHD_CONFIG.format(lab=inv.name, authorized_keys=paths.file("authorized_keys")))
    for hidden in (HOST_DATA_DIR, "/root"):
        if os.path.commonpath([os.path.abspath(paths.root), hidden]) == hidden:
            raise PrerequisiteError(f"{STATE_ENV}={paths.root} lies under {hidden}, which each sandbox host "
                                    "replaces with its own directory",
                                    hint=f"use another directory, e.g. {DEFAULT_STATE_ROOT}")
    for target in ("/var/lib/docker", "/etc/docker", HOST_DATA_DIR):  # bind-mount targets
        os.makedirs(target, exist_ok=True)


def _wait(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


ENGINE_PROFILE = """\
# written by labctl: this sandbox host runs {name} ({version}) from the controller's engine cache
export PATH={path}
"""


def write_engine_profile(hdir: str, engine: Unpacked | None) -> None:
    """The host's own PATH puts its engine's binaries (docker, dockerd, containerd) first: bash sources ~/.bashrc
    for every SSH command, and a login shell reads ~/.profile."""
    if engine is None:
        return
    text = ENGINE_PROFILE.format(name=engine.name, version=engine.version, path=engine.path)
    for rc in (".bashrc", ".profile"):
        with open(os.path.join(hdir, "home", rc), "w", encoding="utf-8") as fh:
            fh.write(text)


def create_host(inv: Inventory, host: Host, address: str, progress: Progress,
                engine: Unpacked | None = None) -> dict:
    """Start the host's namespaces, wire it to the switch, start sshd. Returns its state record."""
    assert inv.subnet is not None
    n = Names(inv.name)
    paths = paths_for(inv.name)
    hdir = paths.host_dir(host.name)
    shutil.rmtree(hdir, ignore_errors=True)
    for sub in ("docker", "etc-docker", "run", "data", "home"):
        os.makedirs(os.path.join(hdir, sub), mode=0o711)
    write_engine_profile(hdir, engine)
    if inv.sandbox_access:
        sandbox_access.write_login_files(hdir, inv.sandbox_access, BECOME_PASSWORD.value,
                                         paths.file("authorized_keys"), host.name, address)
    hostkey = os.path.join(hdir, "ssh_host_ed25519_key")
    local.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host.name, "-f", hostkey])

    progress.step(host.name, "namespaces")
    init = paths.file("host-init.sh")
    with open(os.path.join(hdir, "init.log"), "wb") as log:
        proc = subprocess.Popen(
            ["unshare", "--mount", "--uts", "--net", "--pid", "--fork", "--propagation", "private", "--kill-child",
             "/bin/bash", "-c", 'exec -a "$0" /bin/bash "$@"', n.marker(host.name), init, hdir, host.name],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    ready = os.path.join(hdir, "ready")
    if not _wait(lambda: os.path.exists(ready) or proc.poll() is not None, 15) or not os.path.exists(ready):
        with open(os.path.join(hdir, "init.log"), encoding="utf-8", errors="replace") as fh:
            raise LabctlError(f"[{host.name}] host init failed: {local.tail(fh.read())}")
    pids = [p for p, m in marker_processes(n.marker(host.name)).items() if m == n.marker(host.name)]
    if len(pids) != 1:
        raise LabctlError(f"[{host.name}] cannot find the host's PID 1 (unshare pid {proc.pid}, found {pids})")
    pid = pids[0]

    progress.step(host.name, f"underlay {inv.underlay_interface} {address}/{inv.subnet.prefixlen}")
    tmp, port = n.host_if_tmp(host.name), n.port(host.name)
    local.run(["ip", "link", "add", tmp, "type", "veth", "peer", "name", port, "netns", n.switch_netns])
    local.run(["ip", "-n", n.switch_netns, "link", "set", port, "master", n.bridge, "up"])
    local.run(["ip", "link", "set", tmp, "netns", str(pid)])
    _ip_batch([f"link set {tmp} name {inv.underlay_interface} address {n.mac(host.name)}",
               f"addr add {address}/{inv.subnet.prefixlen} dev {inv.underlay_interface}",
               f"link set {inv.underlay_interface} up"], netns_pid=pid)

    local.run(["ip", "neigh", "flush", "to", address, "dev", n.controller_if], check=False)
    progress.step(host.name, "sshd")
    local.run(["nsenter", "--target", str(pid), "--mount", "--uts", "--net", "--pid", "--",
               "/usr/sbin/sshd", "-f", paths.file("sshd_config"), "-h", hostkey,
               "-o", f"ListenAddress={address}", "-o", "PidFile=/run/sshd.pid"])
    if not _wait(lambda: tcp_open(address, 22, 0.5), 15, 0.05):
        raise LabctlError(f"[{host.name}] sshd does not answer on {address}:22")
    if sandbox_access.hidden(inv, host.name):
        bastion = inv.sandbox_access.bastion if inv.sandbox_access else None
        progress.step(host.name, f"SSH only through the bastion {bastion}")
        sandbox_access.hide_behind_bastion(pid, address, sandbox_addresses(inv)[str(bastion)])
    with open(hostkey + ".pub", encoding="ascii") as fh:
        pub = " ".join(fh.read().split()[:2])
    record = {"address": address, "roles": list(host.roles), "pid": pid, "host_key": pub, "engine": host.engine,
              "access": access_signature(inv, host.name)}
    if engine is not None:
        record["engine_dir"] = engine.directory
    return record


def destroy_host(inv_name: str, host: str, pid: int | None) -> None:
    """Kill the host's PID 1 (the kernel then ends every process in its namespaces), then remove its files."""
    n = Names(inv_name)
    pids = {p for p, m in marker_processes(n.marker(host)).items() if m == n.marker(host)}
    if pid and _cmdline(pid)[:1] == [n.marker(host)]:
        pids.add(pid)
    for p in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)
    _wait(lambda: not any(os.path.exists(f"/proc/{p}") and _cmdline(p) for p in pids), 20, 0.05)
    if netns_exists(n.switch_netns):
        local.run(["ip", "-n", n.switch_netns, "link", "del", n.port(host)], check=False)
    for d in host_cgroup_dirs(inv_name, host):
        _remove_cgroup(d)
    shutil.rmtree(paths_for(inv_name).host_dir(host), ignore_errors=True)


def _remove_cgroup(path: str) -> None:
    """Depth-first rmdir; a cgroup can only be removed once its processes are gone (retry briefly)."""
    for top, dirs, _ in os.walk(path, topdown=False):
        for d in dirs:
            child = os.path.join(top, d)
            _wait(lambda c=child: _try_rmdir(c), 5, 0.05)  # type: ignore[misc]
    _wait(lambda: _try_rmdir(path), 5, 0.05)


def _try_rmdir(path: str) -> bool:
    try:
        os.rmdir(path)
        return True
    except FileNotFoundError:
        return True
    except OSError:
        return False


def remove_lab_objects(lab: str) -> None:
    """Everything of the lab on this machine, found by name: processes, veths, switch, cgroups."""
    n = Names(lab)
    state = read_state(paths_for(lab)) or {}
    hosts = set(state.get("hosts", {}))
    hosts |= {m[len(n.marker_prefix):] for m in marker_processes(n.marker_prefix).values()}
    for h in sorted(hosts):
        destroy_host(lab, h, state.get("hosts", {}).get(h, {}).get("pid"))
    for link in root_links(n.prefix):
        local.run(["ip", "link", "del", link], check=False)
    if netns_exists(n.switch_netns):
        local.run(["ip", "netns", "del", n.switch_netns])
    for d in lab_cgroup_dirs(lab):
        _remove_cgroup(d)


# ---------------------------------------------------------------- endpoints and client files


def store_binary(backend: str, progress: Progress | None) -> str | None:
    """Sandbox hosts share this machine's files: a store server this machine lacks (Consul; Debian 12 has none)
    runs from the controller's cache, fetched from the Debian release that packages it."""
    if backend != "consul" or engines.store_tool_source(backend) is None:
        return None
    unpacked = enginecache.cached(backend)
    if unpacked is None and progress is not None:
        unpacked = enginecache.ensure_store_tool(backend, progress)
    return unpacked.binaries[backend] if unpacked is not None else None


def host_engine(inv: Inventory, host: str) -> Unpacked | None:
    """The fetched engine a sandbox host runs (None: this machine's own), as `sandbox up` built it."""
    want = inv.host(host).engine
    record = (read_state(paths_for(inv.name)) or {}).get("hosts", {}).get(host, {})
    built = record.get("engine", engines.SYSTEM)
    if built != want:
        raise PrerequisiteError(f"[{host}] the sandbox host runs engine {built}, the inventory says {want}",
                                hint=f"run `labctl sandbox up -i {inv.source}` to rebuild it with {want}")
    if not engines.get(want).fetched:
        return None
    engine = enginecache.cached_at(record.get("engine_dir", ""))
    if engine is None or not all(os.path.exists(p) for p in engine.binaries.values()):
        raise PrerequisiteError(f"[{host}] engine {want} is no longer in the cache ({record.get('engine_dir')})",
                                hint=f"run `labctl sandbox up -i {inv.source}` (it fetches it again)")
    return engine


def endpoints(inv: Inventory) -> list[Endpoint]:
    """root on every host; a host behind the inventory's bastion (`sandbox.bastion`) is reached through it."""
    paths = paths_for(inv.name)
    addresses = sandbox_addresses(inv)
    eps = {h.name: Endpoint(name=h.name, address=addresses[h.name], port=22, user="root", key_file=paths.key,
                            known_hosts=paths.known_hosts, roles=h.roles) for h in inv.hosts}
    acc = inv.sandbox_access
    if acc is None or acc.bastion is None:
        return list(eps.values())
    bastion = eps[acc.bastion]
    return [replace(ep, jump=bastion) if sandbox_access.hidden(inv, ep.name) else ep for ep in eps.values()]


def write_client_files(inv: Inventory, state: dict) -> None:
    paths = paths_for(inv.name)
    hosts = state["hosts"]
    with open(paths.known_hosts, "w", encoding="ascii") as fh:
        for name in sorted(hosts):
            fh.write(f"{hosts[name]['address']} {hosts[name]['host_key']}\n")
    with open(paths.ssh_config, "w", encoding="utf-8") as fh:
        fh.write(f"# SSH to the sandbox hosts of lab {inv.name}: ssh -F {paths.ssh_config} HOST\n")
        for name in sorted(hosts):
            jump = (f"  ProxyJump {inv.sandbox_access.bastion}\n"
                    if inv.sandbox_access and sandbox_access.hidden(inv, name) else "")
            fh.write(f"\nHost {name}\n  HostName {hosts[name]['address']}\n  User root\n"
                     f"  IdentityFile {paths.key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {paths.known_hosts}\n"
                     f"  StrictHostKeyChecking yes\n  LogLevel ERROR\n{jump}")


# ---------------------------------------------------------------- up / down


def up(inv: Inventory, progress: Progress, workers: int = 8) -> list[Action]:
    """Bring the sandbox hosts to the inventory's description. Returns the actions taken."""
    check_prerequisites(inv)
    check_subnet_free(inv)
    facts = gather_facts(inv)
    actions = plan_sandbox(inv, facts)
    paths = paths_for(inv.name)
    state = read_state(paths) or {}
    if any(a.kind == "reset-lab" for a in actions):
        progress.step(inv.name, f"removing leftovers ({next(a.reason for a in actions if a.kind == 'reset-lab')})")
        remove_lab_objects(inv.name)
        shutil.rmtree(os.path.join(paths.dir, "hosts"), ignore_errors=True)
        state = {}
    ensure_lab_files(inv, paths)
    widen_neighbour_table(progress)
    state.update({"lab": inv.name, "subnet": str(inv.subnet), "controller": inv.controller_address,
                  "interface": inv.underlay_interface, "inventory": os.path.abspath(inv.source)})
    state.setdefault("hosts", {})
    if any(a.kind == "create-switch" for a in actions):
        progress.step(inv.name, f"switch {Names(inv.name).switch_netns} ({inv.subnet}, controller "
                                f"{inv.controller_address})")
        create_switch(inv)
    for a in actions:
        if a.kind == "destroy-host":
            progress.step(a.target, f"removing ({a.reason})")
            destroy_host(inv.name, a.target, state["hosts"].get(a.target, {}).get("pid"))
            state["hosts"].pop(a.target, None)
        elif a.kind == "keep-host":
            progress.step(a.target, f"unchanged ({a.reason})")
    creates = [inv.host(a.target) for a in actions if a.kind == "create-host"]
    addresses = sandbox_addresses(inv)
    write_state(paths, state)
    fetched = {h.engine: enginecache.ensure_engine(h.engine, progress)
               for h in creates if h.is_docker and engines.get(h.engine).fetched}
    errors: list[str] = []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(creates)))) as pool:
        futures = {h.name: pool.submit(create_host, inv, h, addresses[h.name], progress, fetched.get(h.engine))
                   for h in creates}
        for name, fut in futures.items():
            try:
                state["hosts"][name] = fut.result()
            except LabctlError as exc:
                errors.append(exc.message)
            write_state(paths, state)
    write_client_files(inv, state)
    if errors:
        raise LabctlError("some sandbox hosts could not be created:\n  " + "\n  ".join(errors),
                          hint=f"see {paths.dir}/hosts/HOST/init.log; `labctl sandbox down` removes what exists")
    return actions


NEIGH_DIR = "/proc/sys/net/ipv4/neigh/default"
# All sandbox hosts share this machine's kernel, and with it one IPv4 neighbour (ARP) table across every network
# namespace, capped at gc_thresh3 entries (1024 by default). Real hosts each have their own. 8 hosts x 5 containers
# already need about 1,900 entries (each container's neighbours plus each overlay's entries), and past the cap the
# kernel drops packets ("neighbor table overflow!" in dmesg): 1,231 of 3,120 verify checks failed here at random,
# also between containers on the same host. The sandbox therefore raises the cap while any sandbox lab exists,
# and puts the old values back when the last one goes.
NEIGH_ROOM = {"gc_thresh2": 131072, "gc_thresh3": 262144}
# In /run, like the values themselves lost at reboot; one file for the machine, whatever state root a lab uses.
NEIGH_SAVED = "/run/labctl-sandbox-neighbour-table.json"


def _read_sysctl(name: str) -> int:
    with open(os.path.join(NEIGH_DIR, name)) as f:
        return int(f.read().strip())


def _write_sysctl(name: str, value: int) -> None:
    with open(os.path.join(NEIGH_DIR, name), "w") as f:
        f.write(f"{value}\n")


def widen_neighbour_table(progress: Progress) -> None:
    current = {k: _read_sysctl(k) for k in NEIGH_ROOM}
    low = {k: v for k, v in NEIGH_ROOM.items() if current[k] < v}
    if not low:
        return
    saved = NEIGH_SAVED
    if not os.path.exists(saved):
        with open(saved, "w") as f:
            json.dump(current, f)
    for k, v in low.items():
        _write_sysctl(k, v)
    progress.step("machine", "neighbour table: " + ", ".join(f"{k} {current[k]} -> {v}" for k, v in low.items())
                  + " (all sandbox hosts share this kernel's table; restored by the last `sandbox down`)")


def any_sandbox_lab() -> bool:
    """Any labctl sandbox switch namespace on the machine, whatever state directory its lab used."""
    return os.path.isdir("/run/netns") and any(n.startswith("labctl-") for n in os.listdir("/run/netns"))


def restore_neighbour_table(progress: Progress) -> None:
    saved = NEIGH_SAVED
    if not os.path.exists(saved) or any_sandbox_lab():
        return
    with open(saved) as f:
        old = {k: int(v) for k, v in json.load(f).items() if k in NEIGH_ROOM}
    for k, v in old.items():
        _write_sysctl(k, v)
    os.remove(saved)
    progress.step("machine", "neighbour table: " + ", ".join(f"{k} {v}" for k, v in old.items()) + " again")


def down(lab: str, progress: Progress) -> bool:
    """Remove every trace of the lab. Returns False when there was nothing to remove."""
    paths = paths_for(lab)
    n = Names(lab)
    anything = (os.path.exists(paths.dir) or netns_exists(n.switch_netns) or bool(root_links(n.prefix))
                or bool(marker_processes(n.marker_prefix)) or bool(lab_cgroup_dirs(lab)))
    if not anything:
        restore_neighbour_table(progress)
        return False
    progress.step(lab, "stopping hosts and removing switch, veths, cgroups")
    remove_lab_objects(lab)
    shutil.rmtree(paths.dir, ignore_errors=True)
    restore_neighbour_table(progress)
    return True


class SandboxProvider(Provider):
    name = "sandbox"
    provisions_by_default = False

    def endpoints(self, inv: Inventory) -> list[Endpoint]:
        return endpoints(inv)

    def store_binary(self, backend: str, progress: Progress | None) -> str | None:
        return store_binary(backend, progress)

    def host_engine(self, inv: Inventory, host: str) -> Unpacked | None:
        return host_engine(inv, host)

    def dockerd_service(self, inv: Inventory, host: str) -> Service:
        return sandbox_dockerd(inv.name, host, host_engine(inv, host))


PROVIDER = SandboxProvider()
