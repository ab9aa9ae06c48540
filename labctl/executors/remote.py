"""SSH to lab hosts with Fabric: strict host keys, parallel runs, per-host failures with stderr tails."""

from __future__ import annotations

import os
import secrets
import stat
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import paramiko
from fabric import Config, Connection, ThreadingGroup
from fabric.exceptions import GroupException
from invoke.exceptions import UnexpectedExit

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


class CountingConnection(Connection):
    """A Fabric Connection that counts its round trips (one per command, one per file transfer)."""

    def __init__(self, *args: Any, labctl_name: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.labctl_name = labctl_name or self.host

    def run(self, command: str, **kwargs: Any) -> Any:
        ROUND_TRIPS.add(self.labctl_name)
        return super().run(command, **kwargs)

    def sudo(self, command: str, **kwargs: Any) -> Any:
        ROUND_TRIPS.add(self.labctl_name)
        return super().sudo(command, **kwargs)

    def put(self, *args: Any, **kwargs: Any) -> Any:
        ROUND_TRIPS.add(self.labctl_name)
        return super().put(*args, **kwargs)

    def get(self, *args: Any, **kwargs: Any) -> Any:
        ROUND_TRIPS.add(self.labctl_name)
        return super().get(*args, **kwargs)


def connect(ep: Endpoint, timeout: int = 10) -> Connection:
    """A Fabric connection that trusts only the recorded host key (no AutoAdd, no prompt)."""
    config = Config(overrides={"load_ssh_configs": False, "run": {"hide": True, "warn": False, "in_stream": False}})
    kwargs: dict = {"look_for_keys": ep.key_file is None, "allow_agent": ep.key_file is None,
                    "banner_timeout": timeout, "auth_timeout": timeout}
    if ep.key_file:
        kwargs["key_filename"] = [os.path.expanduser(ep.key_file)]
    conn = CountingConnection(host=ep.address, user=ep.user, port=ep.port, config=config, connect_timeout=timeout,
                              connect_kwargs=kwargs, labctl_name=ep.name)
    if not ep.strict_host_keys:
        # Vagrant VMs: as Vagrant itself does (StrictHostKeyChecking no, UserKnownHostsFile /dev/null). A VM made
        # again answers on the same forwarded port with a new key, which ~/.ssh/known_hosts would reject.
        conn.client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        return conn
    conn.client.load_system_host_keys()
    if ep.known_hosts:
        path = os.path.expanduser(ep.known_hosts)
        if not os.path.exists(path):
            raise LabctlError(f"[{ep.name}] no known_hosts file {path}: the hosts are not up",
                              hint="for a sandbox inventory run `labctl sandbox up` (or `make lab`) first")
        conn.client.load_host_keys(path)
    conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return conn


def failure_from(host: str, exc: BaseException, command: str = "") -> HostFailure:
    if isinstance(exc, StepFailed):
        return exc.failure
    if isinstance(exc, UnexpectedExit):
        res = exc.result
        return HostFailure(host, res.command, res.exited, tail(res.stderr or res.stdout))
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

    def conn(self, name: str) -> Connection:
        if name not in self._conns:
            self._conns[name] = connect(self.endpoints[name])
        return self._conns[name]

    def close(self) -> None:
        for c in self._conns.values():
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


def put_private(conn: Connection, data: bytes, stem: str, suffix: str = "") -> str:
    """Upload data as a new file in the host's root-only labctl directory, under a name no one can predict
    (not a fixed /tmp path another user could prepare as a symlink); returns its path. The caller removes it."""
    ROUND_TRIPS.add(getattr(conn, "labctl_name", conn.host))   # one transfer (a few SFTP requests on one channel)
    sftp = conn.sftp()
    try:
        mode = sftp.stat(PRIVATE_DIR).st_mode
    except FileNotFoundError:
        sftp.mkdir(PRIVATE_DIR, 0o700)
        mode = None
    if mode is not None and stat.S_IMODE(mode) != 0o700:
        sftp.chmod(PRIVATE_DIR, 0o700)
    path = f"{PRIVATE_DIR}/{stem}-{secrets.token_hex(8)}{suffix}"
    with sftp.open(path, "wx") as fh:
        fh.chmod(0o600)
        fh.write(data)
    return path
