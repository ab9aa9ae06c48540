"""Host locks held over SSH for the length of a run (see plan.lock for why a held channel, not a lock file)."""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
from collections.abc import Iterable

import paramiko

from labctl.errors import LabctlError
from labctl.executors.remote import AccessRefused, Hosts, open_root_channel, sudo_refusal
from labctl.plan.lock import Holder, lock_script, parse_holder
from labctl.ui import Progress

SLACK = 30  # seconds beyond --wait before a silent host counts as failed


class HostLocked(LabctlError):
    """Another run holds a host. Exit 2: nothing was changed; wait for it or pass --wait."""

    exit_code = 2


def holder_for(lab: str, command: str) -> Holder:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Holder(lab=lab, command=command, pid=os.getpid(), controller=socket.gethostname(), since=now)


class HostLocks:
    """Locks on a set of hosts, taken one host after another in name order (two runs that wait never deadlock),
    released together. All or nothing: if one host refuses, the ones already taken are released."""

    def __init__(self, hosts: Hosts, names: Iterable[str], holder: Holder, wait: int, progress: Progress) -> None:
        self.hosts = hosts
        self.names = sorted(set(names))
        self.holder = holder
        self.wait = max(0, int(wait))
        self.progress = progress
        self._held: dict[str, paramiko.Channel] = {}

    def __enter__(self) -> HostLocks:
        try:
            for name in self.names:
                self._held[name] = self._take(name)
        except BaseException:
            self.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _take(self, name: str) -> paramiko.Channel:
        conn = self.hosts.conn(name)
        chan = open_root_channel(conn, lock_script(self.holder, self.wait), self.wait + SLACK)
        lines = chan.makefile("r")
        busy = None
        try:
            for raw in lines:
                word, _, rest = str(raw).rstrip("\n").partition(" ")
                if word == "BUSY":
                    busy = parse_holder(rest)
                    if self.wait:
                        self.progress.step(name, f"waiting up to {self.wait}s for the lock held by "
                                                 f"{busy.describe() if busy else 'another run'}")
                elif word == "TIMEOUT":
                    busy = parse_holder(rest) or busy
                elif word == "LOCKED":
                    stale = parse_holder(rest)
                    if stale is not None:
                        self.progress.step(name, f"stale lock of {stale.describe()} taken over: that run ended "
                                                 "without releasing it")
                elif word == "HELD":
                    return chan
        except OSError as exc:  # socket.timeout included
            chan.close()
            raise LabctlError(f"[{name}] no answer while taking the host lock ({exc})") from None
        code = chan.recv_exit_status()
        err = chan.makefile_stderr("r").read().decode(errors="replace").strip()[-300:]
        chan.close()
        if code == 3:
            who = busy.describe() if busy else "another labctl run (no holder record)"
            waited = f" after waiting {self.wait}s" if self.wait else ""
            raise HostLocked(f"[{name}] is locked by {who}{waited}; nothing was changed",
                             hint="let that run finish, or pass --wait SECONDS to wait for it; a run that was "
                                  "killed releases its locks when its SSH connections close")
        fix = sudo_refusal(err) if code == 1 else None
        if fix is not None:
            raise AccessRefused(f"[{name}] sudo as {conn.user} refused: {err}", hint=fix)
        raise LabctlError(f"[{name}] cannot take the host lock (exit {code}): {err or 'no error output'}",
                          hint="labctl needs root on the host (/var/lib/labctl) and flock (util-linux)")

    def release(self) -> None:
        for chan in self._held.values():
            with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
                chan.shutdown_write()   # the holder's `cat` ends: it removes its record, the flock goes with it
                chan.status_event.wait(5)
            chan.close()
        self._held.clear()
