"""Facts of the machine under the engine: hostname, interfaces and addresses, daemon.json and labctl's backup of
it, the restart journal, the underlay interface, and the tools verify's fping mode needs (pure)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from labctl.facts import Fact, fact
from labctl.plan import daemon
from labctl.plan.daemon import BACKUP_JSON, DAEMON_JSON
from labctl.plan.lock import JOURNAL


def parse_ip_addr(out: str) -> dict[str, tuple[str, ...]]:
    """`ip -o -4 addr show` -> interface -> IPv4 addresses (lines: `2: eth1    inet 192.168.56.11/24 ...`)."""
    result: dict[str, list[str]] = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[2] == "inet":
            result.setdefault(fields[1].split("@")[0], []).append(fields[3].split("/")[0])
    return {k: tuple(v) for k, v in result.items()}


@dataclass(frozen=True)
class DaemonJson:
    config: dict                 # {} when absent
    problem: str = ""            # why it cannot be used ("" when fine)


@dataclass(frozen=True)
class Backup:
    present: bool
    owner: str = ""              # the lab whose `up` changed daemon.json and has not been downed


def _daemon_json(text: str) -> DaemonJson:
    config, problem = daemon.parse_config(text)
    return DaemonJson(config, problem)


def _backup(text: str) -> Backup:
    data = daemon.parse_config(text)[0]
    return Backup(bool(text.strip()), str(data.get(daemon.OWNER, "")))


HOSTNAME: Fact[str] = fact("host.hostname", "hostname", lambda t: t.strip())
INTERFACES: Fact[tuple[str, ...]] = fact("host.interfaces", "ls /sys/class/net", lambda t: tuple(t.split()))
ADDRESSES: Fact[dict[str, tuple[str, ...]]] = fact("host.addresses", "ip -o -4 addr show", parse_ip_addr)
DAEMON: Fact[DaemonJson] = fact("host.daemon-json", f"cat {DAEMON_JSON} 2>/dev/null", _daemon_json)
BACKUP: Fact[Backup] = fact("host.daemon-backup", f"cat {BACKUP_JSON} 2>/dev/null", _backup)
INIT_TEST = "test -d /run/systemd/system"     # systemd is the host's init (it makes this directory at boot)
INIT: Fact[str] = fact("host.init", f"{INIT_TEST} && echo systemd || echo none",
                       lambda t: "systemd" if t.strip() == "systemd" else "none")
RESTART_PENDING: Fact[bool] = fact("host.restart-pending", f"test -e {JOURNAL} && echo journal; true",
                                   lambda t: t.strip() == "journal")

# What the fping mode needs on a host; each tool is run, not only looked up (a broken binary counts as missing).
PROBE_TOOLS: Fact[tuple[str, ...] | None] = fact(
    "host.probe-tools",
    "echo \"probe-tools-missing:$(fping -v >/dev/null 2>&1 || printf ' fping';"
    " nsenter --version >/dev/null 2>&1 || printf ' nsenter';"
    " python3 -I -S -c pass >/dev/null 2>&1 || printf ' python3')\"",
    lambda t: tuple(m.group(1).split()) if (m := re.search(r"^probe-tools-missing:(.*)$", t, re.MULTILINE))
    else None)


@dataclass(frozen=True)
class Underlay:
    address: str      # the underlay interface's IPv4 address ("" when it has none)
    mtu: int          # 1500 when unknown


def parse_underlay(text: str) -> Underlay:
    """`ip -o -4 addr show dev IFACE` then the interface's MTU."""
    match = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", text)
    mtu = text.strip().splitlines()[-1] if text.strip() else ""
    return Underlay(match.group(1) if match else "", int(mtu) if mtu.isdigit() else 1500)


def underlay(iface: str) -> Fact[Underlay]:
    q = shlex.quote(iface)
    return fact("host.underlay", f"ip -o -4 addr show dev {q} 2>/dev/null; cat /sys/class/net/{q}/mtu 2>/dev/null",
                parse_underlay)
