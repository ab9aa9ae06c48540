"""The lock a run holds on each host for the whole of `up`, `down` and `provision` (pure: script and holder record).

The lock is `flock` on a file in a root-only directory of the host, taken by a shell that then waits on its
standard input. The controller keeps that SSH channel open while it works and closes it to release the lock. If the
controller dies (Ctrl-C, `kill -9`, a lost laptop lid), its TCP connection closes, sshd closes the channel, the
shell exits and the kernel drops the flock: a killed run never leaves a lock that blocks the next one. It may leave
its holder record behind, which the next run reports as a stale lock it took over.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass

PRIVATE_DIR = "/var/lib/labctl"           # root-only (0700): backups, journal, locks, scripts
LOCK_DIR = f"{PRIVATE_DIR}/locks"
JOURNAL = f"{PRIVATE_DIR}/dockerd-restart.pending"   # dockerd being restarted: written before, removed after
LOCK_FILE = f"{LOCK_DIR}/host.lock"
HOLDER_FILE = f"{LOCK_DIR}/host.lock.holder"
EXIT_BUSY = 3


@dataclass(frozen=True)
class Holder:
    lab: str
    command: str        # up, down, provision
    pid: int
    controller: str     # the controller's host name
    since: str          # ISO 8601, UTC

    def describe(self) -> str:
        return f"lab {self.lab!r} (`labctl {self.command}`, pid {self.pid} on {self.controller}, since {self.since})"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def parse_holder(text: str) -> Holder | None:
    """A holder record as the host returned it; None when empty or not one of ours."""
    try:
        data = json.loads(text)
        return Holder(lab=str(data["lab"])[:64], command=str(data["command"])[:16], pid=int(data["pid"]),
                      controller=str(data["controller"])[:64], since=str(data["since"])[:32])
    except (ValueError, TypeError, KeyError):
        return None


def lock_script(holder: Holder, wait: int) -> str:
    """Take the lock (waiting up to `wait` seconds), record the holder, hold until stdin closes, then clean up.

    Protocol, one line each: `BUSY <record>` when someone holds it, `TIMEOUT <record>` (exit 3) when it stayed
    busy, `LOCKED <previous record>` once taken (a previous record means its run died holding it), then `HELD`."""
    record = f"head -c 2000 {HOLDER_FILE} 2>/dev/null | tr -d '\\n'"
    give_up = (f'flock -w {int(wait)} 9 || {{ echo "TIMEOUT $({record})"; exit {EXIT_BUSY}; }}' if wait > 0
               else f"exit {EXIT_BUSY}")
    return "\n".join((
        "umask 077",
        f"mkdir -p {LOCK_DIR} && chmod 700 {PRIVATE_DIR} {LOCK_DIR} || exit 4",
        f"exec 9>>{LOCK_FILE}",
        "if ! flock -n 9; then",
        # the holder writes its record just after taking the lock: give it a moment before saying "no record"
        f'  r="$({record})"; i=0',
        f'  while [ -z "$r" ] && [ $i -lt 20 ]; do sleep 0.1; r="$({record})"; i=$((i+1)); done',
        '  echo "BUSY $r"',
        f"  {give_up}",
        "fi",
        f'echo "LOCKED $({record})"',
        f"printf '%s\\n' {shlex.quote(holder.to_json())} > {HOLDER_FILE}.$$ && mv {HOLDER_FILE}.$$ {HOLDER_FILE}",
        "echo HELD",
        "cat >/dev/null",
        f"rm -f {HOLDER_FILE}",
    ))
