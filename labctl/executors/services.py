"""Service managers: how a daemon (dockerd, etcd, consul) is started, stopped and checked on a host.

Which one a host gets is a fact of the host, not of its provider (`ByHostInit`): a host whose init is systemd
(/run/systemd/system exists: VMs, real machines) gets systemd units; a host without (sandbox hosts, whose PID 1
is labctl's and whose /run is their own tmpfs; containers) gets supervised processes, start-stop-daemon with a
pidfile and a log under /run/labctl. Both speak through an SSH connection, so the same plan works on either.
"""

from __future__ import annotations

import shlex
import threading
from dataclasses import dataclass, field
from typing import Protocol

from fabric import Connection

from labctl.errors import LabctlError
from labctl.executors.facts import ask
from labctl.facts.host import INIT, INIT_TEST

RUN_DIR = "/run/labctl"


@dataclass(frozen=True)
class Service:
    name: str                      # e.g. "dockerd", "etcd"
    argv: tuple[str, ...] = ()     # the full command line; empty: a unit the system already has (docker.service)
    unit: str | None = None        # systemd only: the unit name, default name + ".service"
    env: dict[str, str] = field(default_factory=dict)
    # Where the host runs no systemd (a container, a sandbox host reached as any machine): the command line to
    # supervise instead of a unit the system already has. Docker's docs start the daemon by hand the same way.
    supervised_argv: tuple[str, ...] = ()


class ServiceManager(Protocol):
    kind: str

    def is_running(self, conn: Connection, svc: Service) -> bool: ...

    def start(self, conn: Connection, svc: Service) -> bool:
        """Start if not running; True when something changed."""
        ...

    def stop(self, conn: Connection, svc: Service) -> bool:
        """Stop if running; True when something changed."""
        ...

    def restart(self, conn: Connection, svc: Service) -> None: ...

    def log_tail(self, conn: Connection, svc: Service, lines: int = 20) -> str: ...


class SupervisedProcess:
    """start-stop-daemon with a pidfile and an append-only log per service."""

    kind = "supervised"

    @staticmethod
    def pidfile(svc: Service) -> str:
        return f"{RUN_DIR}/{svc.name}.pid"

    @staticmethod
    def logfile(svc: Service) -> str:
        return f"{RUN_DIR}/{svc.name}.log"

    def running_command(self, svc: Service) -> str:
        return f"start-stop-daemon --status --pidfile {shlex.quote(self.pidfile(svc))}"

    def is_running(self, conn: Connection, svc: Service) -> bool:
        return bool(conn.run(self.running_command(svc), warn=True, hide=True).ok)

    def start_command(self, svc: Service) -> str:
        argv = svc.argv or svc.supervised_argv
        if not argv:
            raise LabctlError(f"{svc.name}: this host runs no systemd, and labctl has no command line for "
                              f"{svc.name} to supervise there",
                              hint="run systemd on the host (VMs and machines do), or use the sandbox provider")
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(svc.env.items()))
        exe, *args = argv
        ssd = ["start-stop-daemon", "--start", "--background", "--make-pidfile", "--pidfile", self.pidfile(svc),
               "--output", self.logfile(svc), "--exec", exe, "--", *args]
        prefix = f"mkdir -p {RUN_DIR} && " + (f"env {env} " if env else "")
        return prefix + shlex.join(ssd)

    def start(self, conn: Connection, svc: Service) -> bool:
        if self.is_running(conn, svc):
            return False
        conn.run(self.start_command(svc), hide=True)
        return True

    def stop(self, conn: Connection, svc: Service) -> bool:
        if not self.is_running(conn, svc):
            return False
        conn.run(f"start-stop-daemon --stop --pidfile {shlex.quote(self.pidfile(svc))} --retry TERM/30/KILL/5 "
                 "--remove-pidfile", hide=True)
        return True

    def restart(self, conn: Connection, svc: Service) -> None:
        self.stop(conn, svc)
        self.start(conn, svc)

    def log_tail(self, conn: Connection, svc: Service, lines: int = 20) -> str:
        res = conn.run(f"tail -n {int(lines)} {shlex.quote(self.logfile(svc))}", warn=True, hide=True)
        return str(res.stdout)


class Systemd:
    """systemd units on VMs and real machines."""

    kind = "systemd"

    @staticmethod
    def unit(svc: Service) -> str:
        return shlex.quote(svc.unit or f"{svc.name}.service")

    def running_command(self, svc: Service) -> str:
        return f"systemctl is-active --quiet {self.unit(svc)}"

    def is_running(self, conn: Connection, svc: Service) -> bool:
        return bool(conn.run(self.running_command(svc), warn=True, hide=True).ok)

    @staticmethod
    def unit_file(svc: Service) -> str:
        """A unit for a service labctl defines itself (argv): the store as labctl-etcd / labctl-consul."""
        env = "".join(f"Environment={shlex.quote(f'{k}={v}')}\n" for k, v in sorted(svc.env.items()))
        return (f"[Unit]\nDescription=labctl {svc.name}\nAfter=network-online.target\n"
                f"Wants=network-online.target\n\n[Service]\n{env}ExecStart={shlex.join(svc.argv)}\n"
                "Restart=on-failure\n\n[Install]\nWantedBy=multi-user.target\n")

    def start(self, conn: Connection, svc: Service) -> bool:
        changed = False
        if svc.argv:
            path = f"/etc/systemd/system/{svc.unit or svc.name}.service"
            text = self.unit_file(svc)
            if str(conn.run(f"cat {shlex.quote(path)} 2>/dev/null", hide=True, warn=True).stdout) != text:
                conn.run(f"cat > {shlex.quote(path)} <<'LABCTL_EOF'\n{text}LABCTL_EOF\nsystemctl daemon-reload",
                         hide=True)
                changed = True
        if self.is_running(conn, svc) and not changed:
            return False
        conn.run(f"systemctl enable --quiet {self.unit(svc)} && systemctl restart {self.unit(svc)}", hide=True)
        return True

    def stop(self, conn: Connection, svc: Service) -> bool:
        if not self.is_running(conn, svc):
            return False
        conn.run(f"systemctl stop {self.unit(svc)}" + (f" && systemctl disable --quiet {self.unit(svc)}"
                                                       if svc.argv else ""), hide=True)
        return True

    def restart(self, conn: Connection, svc: Service) -> None:
        conn.run(f"systemctl restart {self.unit(svc)}", hide=True)

    def log_tail(self, conn: Connection, svc: Service, lines: int = 20) -> str:
        res = conn.run(f"journalctl -u {self.unit(svc)} -n {int(lines)} --no-pager", warn=True, hide=True)
        return str(res.stdout)


SYSTEMD = Systemd()
SUPERVISED = SupervisedProcess()
_INITS: dict[tuple[str, int], str] = {}     # (address, port) -> its init, as the host said
_LOCK = threading.Lock()


def remember_init(conn: Connection, init: str) -> None:
    """What preflight learnt of the host's init (host.INIT), so that ByHostInit needs no round trip of its own."""
    with _LOCK:
        _INITS[(str(conn.host), int(conn.port))] = init


class ByHostInit:
    """The manager each host's own init calls for: systemd where it runs, supervised processes elsewhere. The
    host is asked once (host.INIT, usually in preflight's round trip) and remembered."""

    kind = "by host init"

    @staticmethod
    def known(conn: Connection) -> str | None:
        with _LOCK:
            return _INITS.get((str(conn.host), int(conn.port)))

    def manager(self, conn: Connection) -> ServiceManager:
        init = self.known(conn)
        if init is None:
            init = ask(conn, str(conn.host), [INIT])[INIT]
            remember_init(conn, init)
        return SYSTEMD if init == "systemd" else SUPERVISED

    def is_running(self, conn: Connection, svc: Service) -> bool:
        """The first question to a host whose init is not known yet also asks its init: one round trip."""
        if self.known(conn) is not None:
            return self.manager(conn).is_running(conn, svc)
        running = "echo running"
        out = str(conn.run(f"if {INIT_TEST}; then echo systemd; {SYSTEMD.running_command(svc)} && {running}; "
                           f"else echo none; {SUPERVISED.running_command(svc)} && {running}; fi; true",
                           hide=True, warn=True).stdout).split()
        remember_init(conn, "systemd" if out[:1] == ["systemd"] else "none")
        return "running" in out

    def start(self, conn: Connection, svc: Service) -> bool:
        return self.manager(conn).start(conn, svc)

    def stop(self, conn: Connection, svc: Service) -> bool:
        return self.manager(conn).stop(conn, svc)

    def restart(self, conn: Connection, svc: Service) -> None:
        self.manager(conn).restart(conn, svc)

    def log_tail(self, conn: Connection, svc: Service, lines: int = 20) -> str:
        return self.manager(conn).log_tail(conn, svc, lines)
