"""`verify` on the hosts: find what exists, probe every check from its source container's network namespace, and
gather the facts that explain failures.

Two ways to probe, chosen per host (`--probe auto` takes the first where the host has what it needs):
- "fping": from the host into the source's network namespace (`nsenter -t PID -n`), one `fping` for all of a
  source's addresses and one resolver process for all its names (nsprobe.py, uploaded). Needs fping, nsenter and
  python3 on the host; `labctl provision` installs them.
- "container": `docker exec` into the source, one busybox `ping` per check, PINGS_AT_ONCE at a time. Needs sh,
  ping and timeout in the image. The fallback.
Both are bounded alike: one echo (1 s), one retry (2 s); a name gets 3 s to resolve; SOURCES_AT_ONCE sources per
host at a time; the whole host under a timeout."""

from __future__ import annotations

import re
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

from fabric import Connection

from labctl.errors import PrerequisiteError
from labctl.executors.facts import ask
from labctl.executors.remote import Hosts, stage_private
from labctl.executors.status import gather as gather_status
from labctl.executors.steps import Report
from labctl.executors.store import store_runner
from labctl.facts import Fact, fact
from labctl.facts import host as host_facts
from labctl.facts.host import Underlay
from labctl.model.inventory import Inventory
from labctl.model.playbook import Playbook
from labctl.model.providers import RULES as PROVIDER_RULES
from labctl.plan.breaks.base import record_fact
from labctl.plan.controlplane import effective
from labctl.plan.status import LabStatus
from labctl.plan.verify import Check, Diagnosis, Facts, Result, derive, explain, sample
from labctl.planes.executor_base import Run, executor_halves
from labctl.planes.kvstore.plan import reachability_probe
from labctl.providers import registry
from labctl.ui import Progress

# p ID TARGET: one ping, one retry; RTT cut out with parameter expansion (no sed/head: big labs run tens of
# thousands of probes on two cores, so every process per probe counts). IPs are bounded by ping's own deadline
# (-w); names also by `timeout`, because a name that does not resolve waits for DNS, which -w does not bound.
PROBE_FN = ("p() { case $2 in *[!0-9.]*) t='timeout 3';; *) t='';; esac; "
            "o=$($t ping ${3:+-s $3} -c1 -W1 -w2 \"$2\" 2>&1 || $t ping ${3:+-s $3} -c1 -W2 -w3 \"$2\" 2>&1); r=$?; "
            "m=''; case $o in *time=*) m=${o#*time=}; m=${m%% ms*};; esac; echo \"$1 $r $m\"; }")
HOST_PROBE_TIMEOUT = 300
PINGS_AT_ONCE = 16        # per source container: bounded so that big labs do not fork thousands of pings at once
SOURCES_AT_ONCE = {"container": 4, "fping": 8}   # per host: probing processes running together
FPING_INTERVAL_MS = {"probes": 1, "again": 10}  # between fping's echoes; mismatches are looked at gently
LINE_RE = re.compile(r"^(\d+) (\d+) ?([0-9.]*)\s*$")
PROBE_MODES = ("auto", "fping", "container")
TARGET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")   # what may go into a probe script unquoted
NSPROBE = Path(__file__).with_name("nsprobe.py")
@dataclass
class Verdict:
    lab: str
    results: list[Result]
    duration_s: float
    sampled: bool
    probe_modes: dict[str, str] = field(default_factory=dict)    # docker host -> "fping" | "container"
    probe_notes: dict[str, str] = field(default_factory=dict)    # docker host -> why not fping
    reprobed: int = 0          # checks probed again because the first round disagreed with the playbook
    causes_hidden: bool = False  # a fault from `break --class` is recorded whose class file says `causes: hide`

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)


def underlay_facts(inv: Inventory) -> tuple[Fact[Underlay], Fact[tuple[str, ...] | None]]:
    """What verify, grade, trace, graph and breaks add to their one round trip: the underlay interface's address
    and MTU, and which of the fping mode's tools the host lacks."""
    return host_facts.underlay(inv.underlay_interface), host_facts.PROBE_TOOLS


def choose_modes(wanted: str, missing: dict[str, tuple[str, ...] | None]) -> tuple[dict[str, str], dict[str, str]]:
    """Probe mode per host and, where it is not fping, why. `wanted` fping on a host without its tools is the
    caller's error to report; auto falls back to container there."""
    modes, notes = {}, {}
    for host, lacking in missing.items():
        if wanted == "container":
            modes[host], notes[host] = "container", "--probe container"
        elif lacking is None or lacking:
            modes[host] = "container"
            notes[host] = (f"no {', '.join(lacking)} on the host" if lacking else "the host did not report its tools")
        else:
            modes[host] = "fping"
    return modes, notes


def probe_modes(probe: str, missing: dict[str, tuple[str, ...] | None]) -> tuple[dict[str, str], dict[str, str]]:
    """Probe mode per host from the tools each lacks (host.PROBE_TOOLS); `--probe fping` where a host lacks its
    tools is a prerequisite error (exit 2) naming the hosts."""
    modes, notes = choose_modes(probe, missing)
    if probe == "fping" and notes:
        raise PrerequisiteError("--probe fping: " + "; ".join(f"{h}: {why}" for h, why in sorted(notes.items())),
                                hint="install fping (and python3) on those hosts, `labctl provision` does, or use "
                                     "--probe auto to fall back to pings inside the containers there")
    return modes, notes


def facts_from(status: LabStatus, underlay: dict[str, Underlay]) -> Facts:
    state = {c.name: c.state or "" for c in status.containers}
    addresses = {c.name: {k: v for k, v in c.addresses.items() if v} for c in status.containers}
    return Facts(state=state, addresses=addresses, host_addresses={h: u.address for h, u in underlay.items()
                                                                   if u.address})


def probe_script(checks: list[tuple[int, Check]], pings_at_once: int = PINGS_AT_ONCE,
                 sources_at_once: int = SOURCES_AT_ONCE["container"]) -> str:
    """One shell script for a host: source containers ping their targets, a bounded number at a time."""
    by_src: dict[str, list[tuple[int, Check]]] = {}
    for i, c in checks:
        by_src.setdefault(c.src, []).append((i, c))
    parts = []
    for n, (src, items) in enumerate(by_src.items()):
        batches = [items[k:k + pings_at_once] for k in range(0, len(items), pings_at_once)]
        body = " ".join(" ".join(f"p {i} {shlex.quote(c.address)}{_size(c)} &" for i, c in batch) + " wait;"
                        for batch in batches)
        inner = f"{PROBE_FN}; {body}"
        parts.append(f"timeout {HOST_PROBE_TIMEOUT} docker exec {shlex.quote(src)} sh -c {shlex.quote(inner)} &")
        if (n + 1) % sources_at_once == 0:
            parts.append("wait;")
    return " ".join(parts) + " wait"


def ns_probe_script(checks: list[tuple[int, Check]], helper: str, sources_at_once: int = SOURCES_AT_ONCE["fping"],
                    interval_ms: int = FPING_INTERVAL_MS["probes"]) -> str:
    """One shell script for a host: the helper once, given every source's checks as "ID TARGET" lines under an
    "@ SOURCE" line, and the sources' PIDs. The PIDs are read in the same script, right before use: a PID taken
    earlier could belong to another process by now. The helper enters each source's namespace in a child of its
    own, sources_at_once at a time, each bounded by HOST_PROBE_TIMEOUT (nsprobe.run_sources)."""
    by_src: dict[str, list[tuple[int, Check]]] = {}
    for i, c in checks:
        by_src.setdefault(c.src, []).append((i, c))
    names = " ".join(shlex.quote(src) for src in by_src)
    batches = -(-len(by_src) // max(1, sources_at_once))
    lines = [f"pids=\" $(docker inspect -f '{{{{.Name}}}}={{{{.State.Pid}}}}' {names} 2>/dev/null | tr '\\n' ' ')\"",
             f"timeout {HOST_PROBE_TIMEOUT * batches + 30} python3 -I -S {shlex.quote(helper)} --sources \"$pids\" "
             f"{int(interval_ms)} {int(sources_at_once)} {HOST_PROBE_TIMEOUT} <<'LABCTL_CHECKS'"]
    for src, items in by_src.items():
        lines.append(f"@ {src}")   # a container name: [a-zA-Z0-9][a-zA-Z0-9_.-]*, as Docker allows
        lines += [f"{i} {c.address} {c.expect}{_size(c)}" for i, c in items if TARGET_RE.match(c.address)]
    lines.append("LABCTL_CHECKS")
    return "\n".join(lines) + "\n"


def _size(c: Check) -> str:
    """A probe line's last word when the check sends a whole packet: its payload size (an int, safe unquoted)."""
    return f" {int(c.size)}" if c.size else ""


def parse_probe_output(out: str) -> dict[int, tuple[bool, float | None]]:
    result = {}
    for line in out.splitlines():
        m = LINE_RE.match(line.strip())
        if m:
            result[int(m.group(1))] = (m.group(2) == "0", float(m.group(3)) if m.group(3) else None)
    return result


def run_probes(hosts: Hosts, checks: list[Check], facts: Facts, progress: Progress,
               unreachable: dict[str, str], modes: dict[str, str] | None = None) -> tuple[list[Result], int]:
    """All checks at once (bounded per host), then every mismatch once more, gently; returns the results and how
    many checks were probed again.

    Under a burst of first contacts the classic overlay resolves neighbours slowly (dockerd answers each L3 miss
    itself), so a few pings of a big lab time out although the path works: 8 hosts x 5 containers gave 700 to
    900 such misses out of 3,120 on this 2-core machine, different ones each run, none when probed alone. A
    mismatch therefore counts only if two more rounds, with less at once, confirm it.
    """
    modes = modes or {}
    results: list[Result] = [Result(c, "isolated") for c in checks]
    todo = []
    for i, c in enumerate(checks):
        # a destination that is not running fails without a probe: its name can outlive it in Docker's DNS, and
        # its address can still answer from a sandbox a failed restart left behind (seen with the store down)
        dst_down = c.via in ("ip", "name", "size") and facts.state.get(c.dst, "running") != "running"
        if facts.state.get(c.src) == "running" and c.address and c.src_host not in unreachable and not dst_down:
            todo.append(i)
        else:
            results[i].cause = "not probed"
    _probe_round(hosts, checks, todo, results, progress, Round("probes", PINGS_AT_ONCE, again=False), modes)
    reprobed: set[int] = set()
    for attempt in ("second", "third"):
        again = [i for i in todo if not results[i].ok]
        if again:
            reprobed.update(again)
            _probe_round(hosts, checks, again, results, progress, Round(f"{attempt} look at mismatches", 8, again=True),
                         modes)
    return results, len(reprobed)


@dataclass(frozen=True)
class Round:
    what: str
    pings_at_once: int        # container mode: pings per source at once
    again: bool               # a re-probe: half the sources at once, fping paced

    def sources_at_once(self, mode: str) -> int:
        return max(1, SOURCES_AT_ONCE[mode] // (2 if self.again else 1))

    @property
    def interval_ms(self) -> int:
        return FPING_INTERVAL_MS["again" if self.again else "probes"]


def _probe_round(hosts: Hosts, checks: list[Check], indices: list[int], results: list[Result],
                 progress: Progress, rnd: Round, modes: dict[str, str]) -> None:
    per_host: dict[str, list[tuple[int, Check]]] = {}
    for i in indices:
        per_host.setdefault(checks[i].src_host, []).append((i, checks[i]))

    def one(host: str, conn: Connection) -> dict[int, tuple[bool, float | None]]:
        mode = modes.get(host, "container")
        progress.step(host, f"{rnd.what}: {len(per_host[host])} from "
                            f"{len({c.src for _, c in per_host[host]})} container(s), {mode} probes")
        # Sent as files: for big labs the script outgrows the 128 KiB a single command-line argument may have.
        # Run and removal are one round trip.
        paths, prologue = [], ""
        if mode == "fping":
            helper, prologue = stage_private(conn, NSPROBE.read_bytes(), "verify-nsprobe", ".py")
            paths.append(helper)
            script = ns_probe_script(per_host[host], helper, rnd.sources_at_once(mode), rnd.interval_ms)
        else:
            script = probe_script(per_host[host], rnd.pings_at_once, rnd.sources_at_once(mode))
        path, more = stage_private(conn, script.encode(), "verify-probes", ".sh")
        paths.insert(0, path)
        q = " ".join(shlex.quote(p) for p in paths)
        out = conn.run(f"{prologue}{more}sh {shlex.quote(paths[0])}; rc=$?; rm -f {q}; exit $rc", hide=True,
                       warn=True).stdout
        return parse_probe_output(str(out))

    answers = hosts.each(one, list(per_host), step=rnd.what)
    for host, items in per_host.items():
        got = answers.get(host, {})
        tools = ("fping, nsenter and python3 on the host" if modes.get(host) == "fping"
                 else "sh, ping and timeout in its image")
        for i, c in items:
            if i in got:
                reached, rtt = got[i]
                results[i].observed = "reach" if reached else "isolated"
                results[i].rtt_ms = rtt if reached else None
                results[i].cause = ""
            else:
                results[i].cause = f"no probe result from {c.src} (needs {tools})"


def misroute_query(peers: list[str], iface: str) -> str:
    """For each peer's underlay address that the host would not send out of the underlay interface: "misroute
    ADDRESS DEVICE [NETWORK SUBNET]", the Docker network named when the device is one of its bridges (a student's
    network whose subnet overlaps the underlay takes the peers' traffic)."""
    addrs = " ".join(shlex.quote(a) for a in peers)
    fmt = shlex.quote("{{.Name}} {{range .IPAM.Config}}{{.Subnet}}{{end}}")
    return (f"for a in {addrs}; do d=$(ip -o route get \"$a\" 2>/dev/null | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p'); "
            f"[ -z \"$d\" ] || [ \"$d\" = {shlex.quote(iface)} ] && continue; "
            f"n=$(docker network ls -q --no-trunc | grep \"^${{d#br-}}\" | head -n 1 | xargs -r docker network "
            f"inspect -f {fmt} 2>/dev/null); echo \"misroute $a $d $n\"; done")


def parse_misroutes(lines: list[str], by_address: dict[str, str]) -> dict[str, str]:
    """peer host -> "DEVICE (network NAME, subnet S)" from misroute_query's output: only where the device is a
    Docker network's bridge (a routed underlay legitimately reaches peers through other interfaces)."""
    found = {}
    for line in lines:
        parts = line.split()
        if len(parts) >= 5 and parts[0] == "misroute" and parts[1] in by_address:
            found[by_address[parts[1]]] = f"{parts[2]} (network {parts[3]}, subnet {parts[4]})"
    return found


def missing_overlays(overlays: list[str]) -> Fact[list[str]]:
    """The lab's overlay networks this host's dockerd does not know."""
    names = " ".join(shlex.quote(o) for o in overlays)
    return fact("verify.missing-overlays",
                f"for o in {names}; do docker network inspect \"$o\" >/dev/null 2>&1 || echo \"$o\"; done",
                str.split)


VXLAN_DROPS: Fact[list[str]] = fact(
    "verify.vxlan-drops", "iptables-save 2>/dev/null | grep -E -- '4789' | grep -E 'DROP|REJECT'",
    lambda t: [r.strip() for r in t.splitlines() if r.strip()])


def diagnose(inv: Inventory, pb: Playbook, hosts: Hosts, status: LabStatus,
             underlay: dict[str, Underlay], unreachable: dict[str, str], progress: Progress) -> Diagnosis:
    overlays = [n.name for n in pb.networks if n.driver == "overlay"]
    names = [h.name for h in inv.docker_hosts if h.name not in unreachable]
    store_probe = reachability_probe(pb.store) if pb.store is not None else ""

    addresses = {n: u.address for n, u in underlay.items() if u.address}

    store_open = fact("verify.store-open", f"{store_probe} >/dev/null 2>&1 && echo open",
                      lambda t: t.strip() == "open") if store_probe else None

    def host_diag(name: str, conn: Connection) -> tuple[list[str], list[str], bool, list[str]]:
        peers = [a for n, a in addresses.items() if n != name]
        missing = missing_overlays(overlays)
        routes = fact("verify.misroutes", misroute_query(peers, inv.underlay_interface), str.splitlines) \
            if peers else None
        asked = [f for f in (missing, VXLAN_DROPS, store_open, routes) if f is not None]
        a = ask(conn, name, asked)     # one round trip
        return (a[missing], a[VXLAN_DROPS], a[store_open] if store_open else True, a[routes] if routes else [])

    per_host = hosts.each(host_diag, names, step="diagnosis")
    by_address = {a: n for n, a in addresses.items()}
    store_ok, detail = None, ""
    unregistered: dict[str, str] = {}
    manager = registry.service_manager(inv)
    if pb.store is not None:
        runner = store_runner(inv, pb, manager)
        conn = hosts.conn(pb.store.host)
        contents = runner.contents(conn)
        store_ok = bool(contents.leader) if contents is not None else runner.healthy(conn)
        detail = f"{pb.store.url} {'answers' if store_ok else 'does not answer'}"
        if contents is not None and store_ok:
            registered = {node.rsplit(":", 1)[0] for node in contents.nodes}
            unregistered = {n: a for n, a in addresses.items() if n in names and a not in registered}
    actual: dict[str, list[str]] = {c.name: [k for k, v in c.addresses.items() if v] for c in status.containers}
    plane = executor_halves().get(pb.control)
    found = plane.diagnose(Run(inv, pb, hosts, names, manager, progress, Report(), addresses=addresses)) \
        if plane else None
    return Diagnosis(store_ok=store_ok, store_detail=detail,
                     overlay_missing={h: m for h, (m, _, _, _) in per_host.items() if m},
                     vxlan_drops={h: r for h, (_, r, _, _) in per_host.items() if r},
                     misroutes={h: parse_misroutes(lines, by_address) for h, (_, _, _, lines) in per_host.items()
                                if parse_misroutes(lines, by_address)},
                     underlay_mtu={h: u.mtu for h, u in underlay.items()},
                     actual_networks=actual, macvlan_hint=PROVIDER_RULES[inv.provider].macvlan_hint,
                     unreachable_hosts=unreachable,
                     store_unreachable_from=[h for h, (_, _, ok, _) in per_host.items() if store_ok and not ok],
                     store_unregistered=unregistered,
                     control=pb.control, plane=found)


def verify(inv: Inventory, pb: Playbook, hosts: Hosts, progress: Progress, sampled: bool = False,
           probe: str = "auto") -> Verdict:
    t0 = time.monotonic()
    progress.step("all", "gathering containers, addresses, underlay addresses and probe tools")
    address_fact, tools_fact = underlay_facts(inv)
    record = record_fact(pb.name)
    status = gather_status(inv, pb, hosts, vnis=False, also=(address_fact, tools_fact, record))
    plane = status.control.plane if status.control else None
    if plane:  # the playbook as the hosts run it (auto with a store may run on swarm: then no store to diagnose)
        pb = effective(pb, plane)
    unreachable = status.unreachable
    answered = status.answered()
    underlay = {n: s[address_fact] for n, s in answered.items()}
    modes, notes = probe_modes(probe, {n: s[tools_fact] for n, s in answered.items()})
    progress.step("all", "probes: " + describe_modes(modes, notes))
    facts = facts_from(status, underlay)
    checks = derive(pb, facts)
    if sampled:
        checks = sample(checks)
    results, reprobed = run_probes(hosts, checks, facts, progress, unreachable, modes)
    if not all(r.ok for r in results):
        progress.step("all", "some checks failed: gathering facts to explain them")
        explain(results, pb, facts, diagnose(inv, pb, hosts, status, underlay, unreachable, progress))
    for r in results:
        if r.ok:
            r.cause = ""
    hidden = any((r := s[record]) and r.get("causes") == "hide" for s in answered.values())
    return Verdict(pb.name, results, time.monotonic() - t0, sampled, modes, notes, reprobed, hidden)


def describe_modes(modes: dict[str, str], notes: dict[str, str]) -> str:
    """"fping from the host on node1, node2; pings inside the containers on node3 (no fping on the host)"."""
    fping = sorted(h for h, m in modes.items() if m == "fping")
    parts = [f"fping from the host on {', '.join(fping)}"] if fping else []
    why: dict[str, list[str]] = {}
    for h in sorted(modes):
        if h not in fping:
            why.setdefault(notes.get(h, ""), []).append(h)
    parts += [f"pings inside the containers on {', '.join(hs)}" + (f" ({note})" if note else "")
              for note, hs in why.items()]
    return "; ".join(parts) or "no docker host answered"
