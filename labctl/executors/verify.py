"""`verify` on the hosts: find what exists, probe every check from inside its source container, and gather the
facts that explain failures. Probes are bounded: one ping (1 s), one retry (2 s), each under `timeout 3`, at most
PINGS_AT_ONCE per source and SOURCES_AT_ONCE sources per host at a time, the whole host under a timeout."""

from __future__ import annotations

import re
import shlex
import time
from dataclasses import dataclass
from typing import Any

from fabric import Connection

from labctl.executors.controlplane import swarm as swarm_exec
from labctl.executors.remote import Hosts, put_private
from labctl.executors.services import manager_for
from labctl.executors.status import gather as gather_status
from labctl.executors.store import StoreRunner
from labctl.model.inventory import Inventory
from labctl.model.playbook import Playbook
from labctl.plan.controlplane import effective
from labctl.plan.controlplane import vxlan as vxlan_plan
from labctl.plan.controlplane.kvstore import reachability_probe
from labctl.plan.controlplane.swarm import blocked_ports
from labctl.plan.verify import Check, Diagnosis, Facts, Result, derive, explain, sample
from labctl.ui import Progress

# p ID TARGET: one ping, one retry; RTT cut out with parameter expansion (no sed/head: big labs run tens of
# thousands of probes on two cores, so every process per probe counts). IPs are bounded by ping's own deadline
# (-w); names also by `timeout`, because a name that does not resolve waits for DNS, which -w does not bound.
PROBE_FN = ("p() { case $2 in *[!0-9.]*) t='timeout 3';; *) t='';; esac; "
            "o=$($t ping -c1 -W1 -w2 \"$2\" 2>&1 || $t ping -c1 -W2 -w3 \"$2\" 2>&1); r=$?; "
            "m=''; case $o in *time=*) m=${o#*time=}; m=${m%% ms*};; esac; echo \"$1 $r $m\"; }")
HOST_PROBE_TIMEOUT = 300
PINGS_AT_ONCE = 16        # per source container: bounded so that big labs do not fork thousands of pings at once
SOURCES_AT_ONCE = 4       # per host: docker exec sessions running together
LINE_RE = re.compile(r"^(\d+) (\d+) ?([0-9.]*)\s*$")


@dataclass
class Verdict:
    lab: str
    results: list[Result]
    duration_s: float
    sampled: bool

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)


def underlay_query(iface: str) -> str:
    return f"ip -o -4 addr show dev {shlex.quote(iface)}; cat /sys/class/net/{shlex.quote(iface)}/mtu"


def parse_underlay(out: str) -> tuple[str, int]:
    """The underlay interface's address and MTU, from underlay_query's output."""
    match = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", out)
    mtu = out.strip().splitlines()[-1] if out.strip() else ""
    return (match.group(1) if match else "", int(mtu) if mtu.isdigit() else 1500)


def facts_from(status: dict[str, Any], underlay: dict[str, tuple[str, int]]) -> Facts:
    state = {c["name"]: c["state"] for c in status["containers"]}
    addresses = {c["name"]: {k: v for k, v in c["addresses"].items() if v} for c in status["containers"]}
    return Facts(state=state, addresses=addresses, host_addresses={h: u[0] for h, u in underlay.items() if u[0]})


def probe_script(checks: list[tuple[int, Check]], pings_at_once: int = PINGS_AT_ONCE,
                 sources_at_once: int = SOURCES_AT_ONCE) -> str:
    """One shell script for a host: source containers ping their targets, a bounded number at a time."""
    by_src: dict[str, list[tuple[int, Check]]] = {}
    for i, c in checks:
        by_src.setdefault(c.src, []).append((i, c))
    parts = []
    for n, (src, items) in enumerate(by_src.items()):
        batches = [items[k:k + pings_at_once] for k in range(0, len(items), pings_at_once)]
        body = " ".join(" ".join(f"p {i} {shlex.quote(c.address)} &" for i, c in batch) + " wait;"
                        for batch in batches)
        inner = f"{PROBE_FN}; {body}"
        parts.append(f"timeout {HOST_PROBE_TIMEOUT} docker exec {shlex.quote(src)} sh -c {shlex.quote(inner)} &")
        if (n + 1) % sources_at_once == 0:
            parts.append("wait;")
    return " ".join(parts) + " wait"


def parse_probe_output(out: str) -> dict[int, tuple[bool, float | None]]:
    result = {}
    for line in out.splitlines():
        m = LINE_RE.match(line.strip())
        if m:
            result[int(m.group(1))] = (m.group(2) == "0", float(m.group(3)) if m.group(3) else None)
    return result


def run_probes(hosts: Hosts, checks: list[Check], facts: Facts, progress: Progress,
               unreachable: dict[str, str]) -> list[Result]:
    """All checks at once (bounded per host), then every mismatch once more, gently.

    Under a burst of first contacts the classic overlay resolves neighbours slowly (dockerd answers each L3 miss
    itself), so a few pings of a big lab time out although the path works: 8 hosts x 5 containers gave 700 to
    900 such misses out of 3,120 on this 2-core machine, different ones each run, none when probed alone. A
    mismatch therefore counts only if two more rounds, with less at once, confirm it.
    """
    results: list[Result] = [Result(c, "isolated") for c in checks]
    todo = []
    for i, c in enumerate(checks):
        if facts.state.get(c.src) == "running" and c.address and c.src_host not in unreachable:
            todo.append(i)
        else:
            results[i].cause = "not probed"
    _probe_round(hosts, checks, todo, results, progress, PINGS_AT_ONCE, SOURCES_AT_ONCE, "probes")
    for attempt in ("second", "third"):
        again = [i for i in todo if not results[i].ok]
        if again:
            _probe_round(hosts, checks, again, results, progress, 8, 2, f"{attempt} look at mismatches")
    return results


def _probe_round(hosts: Hosts, checks: list[Check], indices: list[int], results: list[Result],
                 progress: Progress, pings_at_once: int, sources_at_once: int, what: str) -> None:
    per_host: dict[str, list[tuple[int, Check]]] = {}
    for i in indices:
        per_host.setdefault(checks[i].src_host, []).append((i, checks[i]))

    def one(host: str, conn: Connection) -> dict[int, tuple[bool, float | None]]:
        progress.step(host, f"{what}: {len(per_host[host])} from "
                            f"{len({c.src for _, c in per_host[host]})} container(s)")
        # Sent as a file: for big labs the script outgrows the 128 KiB a single command-line argument may have.
        # Run and removal are one round trip.
        path = put_private(conn, probe_script(per_host[host], pings_at_once, sources_at_once).encode(),
                           "verify-probes", ".sh")
        q = shlex.quote(path)
        out = conn.run(f"sh {q}; rc=$?; rm -f {q}; exit $rc", hide=True, warn=True).stdout
        return parse_probe_output(str(out))

    answers = hosts.each(one, list(per_host), step=what)
    for host, items in per_host.items():
        got = answers.get(host, {})
        for i, c in items:
            if i in got:
                reached, rtt = got[i]
                results[i].observed = "reach" if reached else "isolated"
                results[i].rtt_ms = rtt if reached else None
                results[i].cause = ""
            else:
                results[i].cause = f"no probe result from {c.src} (does its image have sh, ping and timeout?)"


def diagnose(inv: Inventory, pb: Playbook, hosts: Hosts, status: dict[str, Any],
             underlay: dict[str, tuple[str, int]], unreachable: dict[str, str]) -> Diagnosis:
    overlays = [n.name for n in pb.networks if n.driver == "overlay"]
    names = [h.name for h in inv.docker_hosts if h.name not in unreachable]
    store_probe = reachability_probe(pb.store) if pb.store is not None else ""

    def host_diag(name: str, conn: Connection) -> tuple[list[str], list[str], bool]:
        missing = [o for o in overlays
                   if not conn.run(f"docker network inspect {shlex.quote(o)}", hide=True, warn=True).ok]
        rules = str(conn.run("iptables-save 2>/dev/null | grep -E -- '4789' | grep -E 'DROP|REJECT'",
                             hide=True, warn=True).stdout).splitlines()
        store_open = not store_probe or bool(conn.run(store_probe, hide=True, warn=True).ok)
        return missing, [r.strip() for r in rules if r.strip()], store_open

    per_host = hosts.each(host_diag, names, step="diagnosis")
    swarm_out: dict[str, str] = {}
    swarm_drops: dict[str, list[str]] = {}
    if pb.control == "swarm":
        for n, f in swarm_exec.gather(hosts, names).items():
            if f.state != "active":
                swarm_out[n] = f.state or "dockerd not answering"
            rules = [r for r in f.blocked if blocked_ports(r)]
            if rules:
                swarm_drops[n] = rules
    store_ok, detail = None, ""
    if pb.store is not None:
        runner = StoreRunner(pb, manager_for(inv.provider))
        conn = hosts.conn(pb.store.host)
        store_ok = bool(conn.run(f"timeout 5 sh -c {shlex.quote(runner.plan.health)}", hide=True, warn=True).ok)
        detail = f"{pb.store.url} {'answers' if store_ok else 'does not answer'}"
    actual: dict[str, list[str]] = {c["name"]: [k for k, v in c["addresses"].items() if v]
                                    for c in status["containers"]}
    vxlan_faults: dict[str, list[str]] = {}
    if pb.control == "vxlan":
        found = hosts.each(lambda n, c: vxlan_plan.parse_facts(str(c.run(vxlan_plan.FACTS_SCRIPT, hide=True,
                                                                          warn=True).stdout)), names, step="vxlan")
        addresses = {n: u[0] for n, u in underlay.items() if u[0]}
        for n in found:
            if n in addresses:
                want = vxlan_plan.wanted(pb, n, addresses, inv.underlay_interface)
                vxlan_faults[n] = vxlan_plan.faults(want, found[n], {a: h for h, a in addresses.items()})
        vxlan_faults = {n: f for n, f in vxlan_faults.items() if f}
    return Diagnosis(store_ok=store_ok, store_detail=detail,
                     overlay_missing={h: m for h, (m, _, _) in per_host.items() if m},
                     vxlan_drops={h: r for h, (_, r, _) in per_host.items() if r},
                     underlay_mtu={h: u[1] for h, u in underlay.items()},
                     actual_networks=actual, provider=inv.provider, unreachable_hosts=unreachable,
                     store_unreachable_from=[h for h, (_, _, ok) in per_host.items() if store_ok and not ok],
                     control="swarm" if pb.control == "swarm" else "kvstore", swarm_out=swarm_out,
                     swarm_drops=swarm_drops, vxlan_faults=vxlan_faults)


def verify(inv: Inventory, pb: Playbook, hosts: Hosts, progress: Progress, sampled: bool = False) -> Verdict:
    t0 = time.monotonic()
    progress.step("all", "gathering containers, addresses and underlay addresses")
    status = gather_status(inv, pb, hosts, vnis=False, extra=underlay_query(inv.underlay_interface))
    plane = (status.get("control") or {}).get("plane")
    if plane:  # the playbook as the hosts run it (auto with a store may run on swarm: then no store to diagnose)
        pb = effective(pb, plane)
    unreachable = {h["name"]: h["error"] for h in status["hosts"] if h["error"]}
    underlay = {n: parse_underlay(out) for n, out in status["extra"].items() if n not in unreachable}
    facts = facts_from(status, underlay)
    checks = derive(pb, facts)
    if sampled:
        checks = sample(checks)
    results = run_probes(hosts, checks, facts, progress, unreachable)
    if not all(r.ok for r in results):
        progress.step("all", "some checks failed: gathering facts to explain them")
        explain(results, pb, facts, diagnose(inv, pb, hosts, status, underlay, unreachable))
    for r in results:
        if r.ok:
            r.cause = ""
    return Verdict(pb.name, results, time.monotonic() - t0, sampled)
