"""SSH to lab hosts with Fabric: strict host keys, parallel runs, per-host failures with stderr tails."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import secrets
import shlex
import stat
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import paramiko
from fabric import Config, Connection, ThreadingGroup
from fabric.exceptions import GroupException
from invoke.exceptions import UnexpectedExit
from invoke.watchers import Responder

from labctl.errors import HostFailure, HostsFailed, LabctlError, StepFailed
from labctl.executors.local import tail
from labctl.plan.lock import PRIVATE_DIR
from labctl.providers.base import Endpoint

T = TypeVar("T")


class RoundTrips:
    """SSH round trips per host in this process (commands run, files put or fetched): what `LABCTL_ROUND_TRIPS=1`
    prints at the end of a command, and what docs/commands.md lists per command."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, host: str) -> None:
        with self._lock:
            self.counts[host] = self.counts.get(host, 0) + 1

    def describe(self) -> str:
        return ", ".join(f"{h} {n}" for h, n in sorted(self.counts.items())) or "none"


ROUND_TRIPS = RoundTrips()


BECOME_PROMPT = "[labctl-become] password: "   # sudo -p: what the responder answers (on stderr, never a file)


class BecomePassword:
    """The sudo password of this process, if the user gave one (LABCTL_BECOME_PASS, or --ask-become-pass). It is
    held in memory only, and reaches a host only on the SSH channel's stdin when sudo asks for it."""

    def __init__(self) -> None:
        self.value: str | None = None

    def set(self, value: str | None) -> None:
        self.value = value or None


BECOME_PASSWORD = BecomePassword()


def become_command(command: str, user: str, password: bool) -> str:
    """command as root through sudo: as a login shell of root (its ~/.profile gives PATH, as root's own login
    would), never asking on a terminal. With a password, sudo reads it from stdin after its own prompt."""
    ask = f"-S -p {shlex.quote(BECOME_PROMPT)}" if password else "-n"
    return f"sudo {ask} -H -u root -- /bin/bash -lc {shlex.quote(command)}"


SUDO_REFUSALS = (
    # sudo -n says this also to a user who may not use sudo at all: it would have to authenticate them first
    ("a password is required", "sudo wants a password here: set LABCTL_BECOME_PASS, or pass --ask-become-pass; a "
                               "user who may not use sudo at all must first be added to the sudo group (or "
                               "/etc/sudoers.d) on the host"),
    ("incorrect password", "sudo refused the password given (LABCTL_BECOME_PASS or --ask-become-pass)"),
    ("not in the sudoers file", "the user may not use sudo: add it to the sudo group (or /etc/sudoers.d), or log "
                                "in as another user"),
    ("may not run sudo", "the user may not use sudo: add it to the sudo group (or /etc/sudoers.d), or log in as "
                         "another user"),
    ("sudo: command not found", "sudo is not installed: install it (apt-get install sudo), or log in as root"),
    ("sudo: not found", "sudo is not installed: install it (apt-get install sudo), or log in as root"),
    ("a terminal is required", "sudo wants a terminal: allow this user sudo without one (no `requiretty`)"),
)


def sudo_refusal(stderr: str) -> str | None:
    """The fix for sudo's refusal in a command's stderr, or None when sudo ran the command."""
    low = stderr.lower()
    return next((fix for text, fix in SUDO_REFUSALS if text in low), None)


class CountingConnection(Connection):
    """A Fabric Connection that counts its round trips (one per command, one per file transfer) and, for an
    endpoint with `become: sudo`, runs every command and transfer as root through sudo."""

    # Declared here so that they are real attributes: invoke turns the setting of an unknown one into config.
    labctl_name: str = ""
    become: str | None = None
    open_lock: Any = None

    def __init__(self, *args: Any, labctl_name: str = "", become: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.labctl_name = labctl_name or self.host
        self.become = become if become and self.user != "root" else None
        self.open_lock = threading.RLock()

    def open(self) -> Any:
        """One open at a time: a bastion's connection is opened by every thread whose host is behind it."""
        with self.open_lock:
            return super().open()

    def run(self, command: str, **kwargs: Any) -> Any:
        ROUND_TRIPS.add(self.labctl_name)
        if not self.become:
            return super().run(command, **kwargs)
        password = BECOME_PASSWORD.value
        if password is not None:
            kwargs["watchers"] = [*kwargs.get("watchers", ()),
                                  Responder(pattern=re.escape(BECOME_PROMPT), response=password + "\n")]
        warn = kwargs.pop("warn", False)
        result = super().run(become_command(command, self.user, password is not None), warn=True, **kwargs)
        result.stderr = str(result.stderr).replace(BECOME_PROMPT, "")
        result.command = command      # what labctl meant, for error messages (the sudo wrapper adds nothing)
        fix = sudo_refusal(result.stderr) if result.exited == 1 else None
        if fix is not None:
            raise AccessRefused(f"[{self.labctl_name}] sudo as {self.user} refused: "
                                f"{tail(result.stderr).strip()}", hint=fix)
        if not result.ok and not warn:
            raise UnexpectedExit(result)
        return result

    def sudo(self, command: str, **kwargs: Any) -> Any:
        ROUND_TRIPS.add(self.labctl_name)
        return super().sudo(command, **kwargs)

    def put(self, local: Any, remote: str, **kwargs: Any) -> Any:
        if not self.become:
            ROUND_TRIPS.add(self.labctl_name)
            return super().put(local, remote, **kwargs)
        if hasattr(local, "read"):
            data = local.read()
        else:
            with open(local, "rb") as fh:
                data = fh.read()
        staged = self.stage(data if isinstance(data, bytes) else data.encode())
        self.run(f"(umask 077 && cat {shlex.quote(staged)} > {shlex.quote(remote)}); rc=$?; "
                 f"rm -f {shlex.quote(staged)}; exit $rc", hide=True)
        return None

    def get(self, remote: str, local: Any = None, **kwargs: Any) -> Any:
        if not self.become:
            ROUND_TRIPS.add(self.labctl_name)
            return super().get(remote, local, **kwargs)
        out = self.run(f"t=$(mktemp /tmp/.labctl-get-XXXXXXXX) && cat {shlex.quote(remote)} > \"$t\" && "
                       f"chown {shlex.quote(self.user)} \"$t\" && echo \"$t\"", hide=True)
        staged = str(out.stdout).strip()
        try:
            ROUND_TRIPS.add(self.labctl_name)
            return super().get(staged, local, **kwargs)
        finally:
            super().run(f"rm -f {shlex.quote(staged)}", hide=True, warn=True)

    def stage(self, data: bytes) -> str:
        """data in a new file of the login user's, under a name no one can predict (O_EXCL: never a symlink
        someone prepared); the root-side command that reads it removes it."""
        ROUND_TRIPS.add(self.labctl_name)
        path = f"/tmp/.labctl-put-{secrets.token_hex(8)}"
        with self.sftp().open(path, "wx") as fh:
            fh.chmod(0o600)
            fh.write(data)
        return path


def open_root_channel(conn: Connection, command: str, timeout: float) -> paramiko.Channel:
    """A raw session channel running command as root (through sudo for a `become` endpoint), for callers that keep
    the channel (the host lock holds its stdin open). With a sudo password, it is sent only once sudo's own
    prompt has arrived, so that it can never reach the command's stdin."""
    open_or_explain(conn)
    transport = conn.client.get_transport()
    assert transport is not None
    chan = transport.open_session()
    chan.settimeout(timeout)
    become = getattr(conn, "become", None)
    password = BECOME_PASSWORD.value if become else None
    chan.exec_command(become_command(command, conn.user, password is not None) if become else command)
    if password is None:
        return chan
    prompt, seen, sent = BECOME_PROMPT.encode(), b"", False
    deadline = time.monotonic() + min(timeout, 30)
    while time.monotonic() < deadline:
        if chan.recv_stderr_ready():
            seen += chan.recv_stderr(4096)
            if seen.count(prompt) > 1:        # asked again: the password was wrong
                chan.close()
                raise AccessRefused(f"[{getattr(conn, 'labctl_name', conn.host)}] sudo as {conn.user} refused the "
                                    "password", hint=sudo_refusal("incorrect password"))
            if prompt in seen and not sent:
                chan.sendall((password + "\n").encode())
                sent = True
        elif chan.recv_ready() or chan.exit_status_ready():
            return chan        # the command runs (or sudo refused; the caller reads the exit status)
        else:
            time.sleep(0.01)
    return chan


def open_or_explain(conn: Connection) -> None:
    """conn.open(), with a failure to connect told as the host's name, the address tried and why."""
    name = getattr(conn, "labctl_name", conn.host)
    via = f" through {conn.gateway.host}" if isinstance(conn.gateway, Connection) else ""
    try:
        conn.open()
    except (AccessRefused, LabctlError):
        raise
    except (OSError, EOFError, paramiko.SSHException) as exc:
        why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise LabctlError(f"[{name}] cannot connect to {conn.user}@{conn.host}:{conn.port}{via}: {why}",
                          hint="is the host up and its address, port, user and key right? `labctl hosts` shows "
                               "what labctl uses") from None


class AccessRefused(LabctlError):
    """A host cannot be used as the inventory says (unknown host key, sudo refused): exit 2, nothing changed."""

    exit_code = 2


def _fingerprint(key: paramiko.PKey) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


class RefuseUnknown(paramiko.MissingHostKeyPolicy):
    """Refuse a host whose key is not recorded, naming the host and how to check and record it."""

    def __init__(self, ep: Endpoint) -> None:
        self.ep = ep

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        where = os.path.expanduser(self.ep.known_hosts or "~/.ssh/known_hosts")
        port = f"-p {self.ep.port} " if self.ep.port != 22 else ""
        raise AccessRefused(
            f"[{self.ep.name}] unknown host key for {hostname}: {key.get_name()} {_fingerprint(key)}",
            hint=f"check it (on the host: ssh-keygen -lf /etc/ssh/ssh_host_{key.get_name().split('-')[-1]}_key.pub), "
                 f"then record it: ssh-keyscan {port}-t {key.get_name()} {self.ep.address} >> {where}; or set "
                 "`ssh: {host_keys: accept-new}` in the inventory to record keys met for the first time")


class AcceptNew(paramiko.MissingHostKeyPolicy):
    """OpenSSH's StrictHostKeyChecking=accept-new: record the key of a host met for the first time (a changed key
    is still refused, by paramiko, before any policy is asked)."""

    _lock = threading.Lock()

    def __init__(self, ep: Endpoint) -> None:
        self.ep = ep

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        path = os.path.expanduser(self.ep.known_hosts or "~/.ssh/known_hosts")
        entry = hostname              # paramiko's name for it: "[address]:port" off port 22
        with self._lock:
            os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
            with open(path, "a", encoding="ascii") as fh:
                fh.write(f"{entry} {key.get_name()} {key.get_base64()}\n")
        client.get_host_keys().add(entry, key.get_name(), key)


def connect(ep: Endpoint, timeout: int = 10, gateway: Connection | None = None) -> Connection:
    """A Fabric connection that trusts only the recorded host key (no AutoAdd, no prompt unless the inventory
    opts in to accept-new), through the endpoint's bastion if it has one."""
    config = Config(overrides={"load_ssh_configs": False, "run": {"hide": True, "warn": False, "in_stream": False}})
    kwargs: dict = {"look_for_keys": ep.key_file is None, "allow_agent": ep.key_file is None,
                    "banner_timeout": timeout, "auth_timeout": timeout}
    if ep.key_file:
        kwargs["key_filename"] = [os.path.expanduser(ep.key_file)]
    if ep.jump is not None and gateway is None:
        gateway = connect(ep.jump, timeout)
    conn = CountingConnection(host=ep.address, user=ep.user, port=ep.port, config=config, connect_timeout=timeout,
                              connect_kwargs=kwargs, labctl_name=ep.name, become=ep.become, gateway=gateway)
    if not ep.strict_host_keys:
        # Vagrant VMs: as Vagrant itself does (StrictHostKeyChecking no, UserKnownHostsFile /dev/null). A VM made
        # again answers on the same forwarded port with a new key, which ~/.ssh/known_hosts would reject.
        conn.client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        return conn
    conn.client.load_system_host_keys()
    if ep.known_hosts:
        path = os.path.expanduser(ep.known_hosts)
        if not os.path.exists(path) and ep.host_keys != "accept-new":
            raise LabctlError(f"[{ep.name}] no known_hosts file {path}: the hosts are not up",
                              hint="for a sandbox inventory run `labctl sandbox up` (or `make lab`) first")
        if os.path.exists(path):
            conn.client.load_host_keys(path)
    conn.client.set_missing_host_key_policy(AcceptNew(ep) if ep.host_keys == "accept-new" else RefuseUnknown(ep))
    return conn


def failure_from(host: str, exc: BaseException, command: str = "") -> HostFailure:
    if isinstance(exc, StepFailed):
        return exc.failure
    if isinstance(exc, UnexpectedExit):
        res = exc.result
        return HostFailure(host, res.command, res.exited, tail(res.stderr or res.stdout))
    if isinstance(exc, AccessRefused):
        return HostFailure(host, "ssh", None, exc.message, hint=exc.hint or "", access=True)
    if isinstance(exc, LabctlError):
        return HostFailure(host, command or "(step)", None, exc.message)
    if isinstance(exc, paramiko.BadHostKeyException | paramiko.SSHException):
        return HostFailure(host, command or "ssh", None,
                           f"{type(exc).__name__}: {exc} (is the host key in the lab's known_hosts?)")
    return HostFailure(host, command or "(step)", None, f"{type(exc).__name__}: {exc}")


class Hosts:
    """Connections to a set of hosts, opened lazily, reused across steps, closed together."""

    def __init__(self, endpoints: Iterable[Endpoint]) -> None:
        self.endpoints = {ep.name: ep for ep in endpoints}
        self._conns: dict[str, Connection] = {}
        self._lock = threading.Lock()

    def conn(self, name: str) -> Connection:
        if name not in self._conns:
            ep = self.endpoints[name]
            self._conns[name] = connect(ep, gateway=self._gateway(ep.jump) if ep.jump else None)
        return self._conns[name]

    def _gateway(self, jump: Endpoint) -> Connection:
        """One connection to a bastion, shared by every host behind it (an inventory host's own connection when
        the bastion is one of the lab's hosts)."""
        if jump.name in self.endpoints:
            return self.conn(jump.name)
        with self._lock:
            key = f"jump:{jump.user}@{jump.address}:{jump.port}"
            if key not in self._conns:
                self._conns[key] = connect(jump)
            return self._conns[key]

    def close(self) -> None:
        # the hosts behind a bastion first (a bastion's connection is made before theirs): each closes its
        # channels through the bastion while it is still open
        for c in reversed(list(self._conns.values())):
            with contextlib.suppress(EOFError, OSError, paramiko.SSHException):
                c.close()
        self._conns.clear()

    def __enter__(self) -> Hosts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def group_run(self, command: str, names: Iterable[str] | None = None, step: str = "") -> dict[str, str]:
        """Run one command on many hosts at once (Fabric ThreadingGroup); stdout per host."""
        names = list(names if names is not None else self.endpoints)
        group = ThreadingGroup.from_connections([self.conn(n) for n in names])
        by_conn = {id(self.conn(n)): n for n in names}
        try:
            results = group.run(command, hide=True)
        except GroupException as exc:
            results = exc.result
        outcomes = {by_conn[id(c)]: r if isinstance(r, BaseException) else str(r.stdout) for c, r in results.items()}
        return settle(outcomes, step or command, command)

    def each(self, fn: Callable[[str, Connection], T], names: Iterable[str] | None = None,
             step: str = "", workers: int = 16) -> dict[str, T]:
        """Run fn(host, connection) for every host in parallel; all failures reported, successes kept."""
        names = list(names if names is not None else self.endpoints)
        outcomes: dict[str, T | BaseException] = {}
        pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(names))))
        futures = {n: pool.submit(fn, n, self.conn(n)) for n in names}
        try:
            for n, fut in futures.items():
                try:
                    outcomes[n] = fut.result()
                except Exception as exc:  # noqa: BLE001 - every host's failure is reported, none hides others
                    outcomes[n] = exc
        except KeyboardInterrupt:
            # Ctrl-C: do not wait for the hosts' running commands (a verify round can take minutes). Closing the
            # connections ends their channels, so the worker threads return at once; what runs remotely is
            # bounded by its own timeouts.
            pool.shutdown(wait=False, cancel_futures=True)
            self.close()
            raise
        pool.shutdown(wait=True)
        return settle(outcomes, step or "step")


def settle(outcomes: dict[str, T | BaseException], step: str, command: str = "") -> dict[str, T]:
    """The hosts' results, or HostsFailed naming every failed host (with the successes kept in it)."""
    ok: dict[str, T] = {h: r for h, r in outcomes.items() if not isinstance(r, BaseException)}
    failures = [failure_from(h, r, command) for h, r in outcomes.items() if isinstance(r, BaseException)]
    if failures:
        raise HostsFailed(step, failures, ok)
    return ok


def stage_private(conn: Connection, data: bytes, stem: str, suffix: str = "") -> tuple[str, str]:
    """put_private in one round trip also through sudo: (the file's path, a shell prologue that the caller's next
    command must start with). As root the file is in place at once and the prologue is empty; through `become`
    the file is staged as the login user (O_EXCL, mode 600) and the prologue, run as root, moves it into place."""
    path = f"{PRIVATE_DIR}/{stem}-{secrets.token_hex(8)}{suffix}"
    if not getattr(conn, "become", None):
        return put_private(conn, data, stem, suffix, path=path), ""
    staged = conn.stage(data)
    d, t, p = (shlex.quote(x) for x in (PRIVATE_DIR, staged, path))
    return path, f"(umask 077 && mkdir -p {d} && chmod 700 {d} && cat {t} > {p}) && rm -f {t} || exit 97; "


def put_private(conn: Connection, data: bytes, stem: str, suffix: str = "", path: str = "") -> str:
    """Upload data as a new file in the host's root-only labctl directory, under a name no one can predict
    (not a fixed /tmp path another user could prepare as a symlink); returns its path. The caller removes it."""
    if getattr(conn, "become", None):
        path, prologue = stage_private(conn, data, stem, suffix)
        conn.run(prologue + "true", hide=True)
        return path
    path = path or f"{PRIVATE_DIR}/{stem}-{secrets.token_hex(8)}{suffix}"
    ROUND_TRIPS.add(getattr(conn, "labctl_name", conn.host))   # one transfer (a few SFTP requests on one channel)
    sftp = conn.sftp()
    try:
        mode = sftp.stat(PRIVATE_DIR).st_mode
    except FileNotFoundError:
        sftp.mkdir(PRIVATE_DIR, 0o700)
        mode = None
    if mode is not None and stat.S_IMODE(mode) != 0o700:
        sftp.chmod(PRIVATE_DIR, 0o700)
    with sftp.open(path, "wx") as fh:
        fh.chmod(0o600)
        fh.write(data)
    return path
