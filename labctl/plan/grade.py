"""`grade`: the hosts' real objects (made by hand, with or without labctl's labels) against an exercise's tasks.

Pure: the executor supplies each host's `docker network inspect` and `docker inspect` output (plan.objects) and,
later, the probe results; this module matches the exercise's handles to Docker's objects, compares every field
the exercise names, derives the reachability checks and totals the points. A task earns its points when every one
of its findings holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from labctl.model.checks import normal_image_ref
from labctl.model.exercise import ANY, AttachSpec, ContainerSpec, Exercise, NetworkSpec, Task
from labctl.model.playbook import Expectation, PortMapping, parse_port
from labctl.plan.objects import HostObjects, object_facts, objects_from
from labctl.plan.verify import Check, Result

__all__ = ["HostObjects", "object_facts", "objects_from"]

DOCKER_OWN = ("bridge", "host", "none", "docker_gwbridge", "ingress")   # never a student's network
LOCAL = ("bridge", "macvlan", "ipvlan", "null", "host")


@dataclass(frozen=True)
class Finding:
    ok: bool
    text: str


@dataclass
class TaskResult:
    task: Task
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every finding holds, and there is at least one: a task nothing could be checked for earns nothing."""
        return bool(self.findings) and all(f.ok for f in self.findings)

    @property
    def points(self) -> int:
        return self.task.points if self.ok else 0


@dataclass
class Match:
    """The Docker objects the exercise's handles stand for (absent: nothing matched)."""

    networks: dict[str, str] = field(default_factory=dict)           # network handle -> Docker name
    containers: dict[str, str] = field(default_factory=dict)         # container handle -> Docker name


# ---------------------------------------------------------------- networks


def _ipam(net: dict[str, Any]) -> dict[str, str]:
    return ((net.get("IPAM") or {}).get("Config") or [{}])[0] or {}


def network_values(net: dict[str, Any]) -> dict[str, str | None]:
    """The fields an exercise can ask about, as Docker shows them."""
    ipam, options = _ipam(net), net.get("Options") or {}
    bridge = options.get("com.docker.network.bridge.name")
    if bridge is None and net.get("Driver") == "bridge":
        bridge = f"br-{str(net.get('Id', ''))[:12]}"   # Docker's name for a bridge it names itself
    return {"driver": net.get("Driver"), "subnet": ipam.get("Subnet"), "gateway": ipam.get("Gateway"),
            "ip_range": ipam.get("IPRange"), "bridge_name": bridge, "parent": options.get("parent")}


def _network_hosts(spec: NetworkSpec, name: str, objects: dict[str, HostObjects]) -> list[str]:
    if spec.hosts is not None:
        return list(spec.hosts)
    if spec.driver == "overlay" or spec.driver is None:
        seen = [h for h, o in objects.items() if name in o.networks]
        if spec.driver == "overlay" or any(objects[h].networks[name].get("Scope") != "local" for h in seen):
            return seen[:1] or list(objects)[:1]   # one host's view of a cluster-wide network is enough
    return list(objects)


def network_findings(spec: NetworkSpec, name: str, objects: dict[str, HostObjects]) -> list[Finding]:
    findings = []
    for host in _network_hosts(spec, name, objects):
        if host not in objects:
            continue   # a host that cannot be asked: unreachable_findings says so
        where = f"network {name} ({host})"
        net = objects[host].networks.get(name)
        if net is None:
            there = sorted(n for n in objects[host].networks if n not in DOCKER_OWN)
            findings.append(Finding(False, f"{where}: not found; networks there: {', '.join(there) or 'none'}"))
            continue
        values = network_values(net)
        wanted = ([("driver", spec.driver)] if spec.driver else []) + list(spec.fields)
        good = []
        for key, expected in wanted:
            found = values.get(key)
            if expected == ANY and found:
                good.append(f"{key} {found}")
            elif expected == ANY:
                findings.append(Finding(False, f"{where}: no {key.replace('_', ' ')}, expected one"))
            elif found != expected:
                findings.append(Finding(False, f"{where}: {key} {found or 'none'}, expected {expected}"))
            else:
                good.append(f"{key} {found}")
        options = net.get("Options") or {}
        for key, expected in spec.options:
            found = options.get(key)
            if found is None or (expected != ANY and str(found).lower() != expected.lower()):
                findings.append(Finding(False, f"{where}: option {key} {found or 'not set'}, expected {expected}"))
            else:
                good.append(f"{key}={found}")
        findings.append(Finding(True, f"{where}: " + (", ".join(good) or "exists")))
    return findings


# ---------------------------------------------------------------- containers


def _mode(c: dict[str, Any], host: HostObjects) -> str:
    """HostConfig.NetworkMode as the exercise writes it: default -> bridge, container:<id> -> container:<name>."""
    mode = str((c.get("HostConfig") or {}).get("NetworkMode") or "default")
    if mode == "default":
        return "bridge"
    if mode.startswith("container:"):
        ref = mode.split(":", 1)[1]
        return f"container:{host.container_by_id(ref) or ref}"
    return mode


def _attachments(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return (c.get("NetworkSettings") or {}).get("Networks") or {}


def _net_name(handle: str, match: Match) -> str | None:
    return "bridge" if handle == "bridge" else match.networks.get(handle)


def container_findings(spec: ContainerSpec, name: str, objects: dict[str, HostObjects],
                       match: Match) -> list[Finding]:
    host = objects.get(spec.host)
    if host is None:
        return []   # a host that cannot be asked: unreachable_findings says so
    c = host.containers.get(name)
    where = f"container {name} ({spec.host})"
    if c is None:
        elsewhere = [h for h, o in objects.items() if name in o.containers]
        text = f"{where}: not found" + (f"; it exists on {', '.join(elsewhere)}" if elsewhere else "")
        return [Finding(False, text)]
    findings: list[Finding] = []
    good: list[str] = []
    state = str((c.get("State") or {}).get("Status"))
    if spec.running is not None:
        if (state == "running") != spec.running:
            findings.append(Finding(False, f"{where}: {state}, expected {'running' if spec.running else 'stopped'}"))
        else:
            good.append(state)
    if spec.image is not None:
        image = str((c.get("Config") or {}).get("Image"))
        if normal_image_ref(image) != normal_image_ref(spec.image):
            findings.append(Finding(False, f"{where}: image {image}, expected {spec.image}"))
        else:
            good.append(f"image {image}")
    mode = _mode(c, host)
    if spec.network_mode is not None:
        expected = spec.network_mode
        if expected.startswith("container:"):
            other = match.containers.get(expected.split(":", 1)[1])
            expected = f"container:{other or expected.split(':', 1)[1]}"
        if mode != expected:
            findings.append(Finding(False, f"{where}: network mode {mode}, expected {expected}"))
        else:
            good.append(f"network mode {mode}")
    if spec.networks is not None:
        findings += _network_attachments(where, c, spec.networks, match, good)
    for port in spec.ports or ():
        problem = _port_problem(c, port)
        if problem:
            findings.append(Finding(False, f"{where}: {problem}"))
        else:
            good.append(f"publishes {port}")
    findings.append(Finding(True, f"{where}: " + (", ".join(good) or "exists")))
    return findings


def _network_attachments(where: str, c: dict[str, Any], wanted: tuple[AttachSpec, ...], match: Match,
                         good: list[str]) -> list[Finding]:
    findings = []
    actual = _attachments(c)
    expected_names = set()
    for a in wanted:
        net = _net_name(a.network, match)
        if net is None:
            findings.append(Finding(False, f"{where}: should be on network <{a.network}>, which was not found"))
            continue
        expected_names.add(net)
        ep = actual.get(net)
        if ep is None:
            on = ", ".join(sorted(actual)) or "no network"
            findings.append(Finding(False, f"{where}: not on network {net} (it is on {on})"))
            continue
        addr = ep.get("IPAddress") or ""
        if a.ip == ANY and not addr:
            findings.append(Finding(False, f"{where}: no address on {net}, expected one"))
        elif a.ip not in (None, ANY) and addr != a.ip:
            findings.append(Finding(False, f"{where}: address on {net} {addr or 'none'}, expected {a.ip}"))
        else:
            good.append(f"on {net}" + (f" ({addr})" if addr else ""))
        aliases = set(ep.get("Aliases") or ())
        missing = [x for x in a.aliases if x not in aliases]
        if missing:
            findings.append(Finding(False, f"{where}: alias {', '.join(missing)} missing on {net}"))
    extra = sorted(set(actual) - expected_names - {"none", "host"} if actual else set())
    for net in extra:
        findings.append(Finding(False, f"{where}: also on network {net}, which the task does not ask for"))
    return findings


def _port_problem(c: dict[str, Any], port: str) -> str | None:
    m = parse_port(port)
    if not isinstance(m, PortMapping):
        return f"port {port}: {m}"
    bindings = ((c.get("HostConfig") or {}).get("PortBindings") or {}).get(f"{m.container_port}/{m.proto}") or []
    if not bindings:
        return f"port {m.container_port}/{m.proto} is not published, expected {port}"
    for b in bindings:
        host_port_ok = m.host_port is None or str(b.get("HostPort")) == str(m.host_port)
        ip_ok = m.host_ip is None or (b.get("HostIp") or "0.0.0.0") == m.host_ip
        if host_port_ok and ip_ok:
            return None
    shown = ", ".join(f"{b.get('HostIp') or '0.0.0.0'}:{b.get('HostPort') or '(any)'}" for b in bindings)
    return f"port {m.container_port}/{m.proto} published as {shown}, expected {port}"


# ---------------------------------------------------------------- matching


def _failures(findings: list[Finding]) -> int:
    return sum(not f.ok for f in findings)


def match_objects(ex: Exercise, objects: dict[str, HostObjects]) -> Match:
    """Fixed names first; then each `name: any` takes the unclaimed object with the fewest failing findings
    (ties: the first name in alphabetical order), so that a student's own name for a network still earns the
    points its fields are worth."""
    m = Match()
    for n in ex.networks:
        if n.name is not None:
            m.networks[n.key] = n.name
    for n in ex.networks:
        if n.name is None:
            taken = set(m.networks.values())
            candidates = sorted({name for o in objects.values() for name in o.networks
                                 if name not in DOCKER_OWN and name not in taken})
            scored = [(_failures(network_findings(n, name, objects)), name) for name in candidates]
            if scored:
                m.networks[n.key] = min(scored)[1]
    for x in ex.containers:
        if x.name is not None:
            m.containers[x.key] = x.name
    for x in ex.containers:
        if x.name is None and x.host in objects:
            taken = set(m.containers.values())
            candidates = sorted(name for name in objects[x.host].containers if name not in taken)
            scored = [(_failures(container_findings(x, name, objects, m)), name) for name in candidates]
            if scored:
                m.containers[x.key] = min(scored)[1]
    return m


# ---------------------------------------------------------------- reachability


@dataclass(frozen=True)
class Probe:
    task: str
    expectation: Expectation
    check: Check


def drivers(objects: dict[str, HostObjects]) -> dict[tuple[str, str], str]:
    return {(h, name): str(n.get("Driver")) for h, o in objects.items() for name, n in o.networks.items()}


def addresses(c: dict[str, Any]) -> dict[str, str]:
    return {net: str(ep["IPAddress"]) for net, ep in _attachments(c).items() if ep.get("IPAddress")}


def probes(ex: Exercise, objects: dict[str, HostObjects], m: Match,
           host_addresses: dict[str, str]) -> tuple[list[Probe], dict[str, list[Finding]]]:
    """The checks to probe for every task's `expect`, and the findings of those that cannot be probed (a source
    that does not run, a target without an address)."""
    todo: list[Probe] = []
    cannot: dict[str, list[Finding]] = {}
    for t in ex.tasks:
        for e in t.expect:
            checks, problem = _checks_for(ex, e, objects, m, host_addresses, t.id)
            if problem:
                cannot.setdefault(t.id, []).append(Finding(False, problem))
            todo += [Probe(t.id, e, c) for c in checks]
    return todo, cannot


def _describe_target(e: Expectation, m: Match) -> str:
    if e.kind == "container":
        return m.containers.get(e.target, f"<{e.target}>")
    return {"host": f"host {e.target}", "name": f"the name {e.target}", "address": e.target}[e.kind]


def _checks_for(ex: Exercise, e: Expectation, objects: dict[str, HostObjects], m: Match,
                host_addresses: dict[str, str], task: str) -> tuple[list[Check], str]:
    spec, dst_spec = ex.container(e.src), ex.container(e.target) if e.kind == "container" else None
    assert spec is not None   # validated
    if spec.host not in objects or (dst_spec is not None and dst_spec.host not in objects):
        return [], ""   # a host that cannot be asked: unreachable_findings says so
    src = m.containers.get(e.src)
    src_json = objects[spec.host].containers.get(src or "") if spec.host in objects else None
    head = f"{src or '<' + e.src + '>'} -> {_describe_target(e, m)}"
    if src is None or src_json is None:
        return [], f"{head}: cannot probe, {src or e.src} not found on {spec.host}"
    state = str((src_json.get("State") or {}).get("Status"))
    if state != "running":
        return [], f"{head}: cannot probe, {src} is {state}"
    reason = f"task {task}"
    net = None if e.network is None else _net_name(e.network, m) or f"<{e.network}>"
    if e.kind == "host":
        addr = host_addresses.get(e.target, "")
        if not addr:
            return [], f"{head}: cannot probe, the underlay address of {e.target} is unknown"
        return [Check(src, spec.host, f"host:{e.target}", e.target, net or "host", addr, e.expect, "host",
                      reason)], ""
    if e.kind in ("name", "address"):
        return [Check(src, spec.host, e.target, None, net or "-", e.target, e.expect, e.kind if e.kind == "name"
                      else "address", reason)], ""
    assert dst_spec is not None
    dst = m.containers.get(e.target)
    dst_json = objects[dst_spec.host].containers.get(dst or "") if dst_spec.host in objects else None
    if dst is None or dst_json is None:
        return [], f"{head}: cannot probe, {dst or e.target} not found on {dst_spec.host}"
    dst_addrs = addresses(dst_json)
    if net is not None:
        if net not in dst_addrs:
            return [], f"{head}: cannot probe, {dst} has no address on {net}"
        targets = [net]
    else:
        shared = _shared(src_json, spec.host, dst_json, dst_spec.host, objects)
        targets = shared or sorted(dst_addrs)
    if not targets:
        return [], f"{head}: cannot probe, {dst} has no address"
    return [Check(src, spec.host, dst, dst_spec.host, n, dst_addrs[n], e.expect, "ip", reason) for n in targets], ""


def _shared(a: dict[str, Any], a_host: str, b: dict[str, Any], b_host: str, objects: dict[str, HostObjects]) -> \
        list[str]:
    kinds = drivers(objects)
    return sorted(n for n in set(addresses(a)) & set(addresses(b))
                  if a_host == b_host or kinds.get((a_host, n)) not in LOCAL)


def probe_state(ex: Exercise, objects: dict[str, HostObjects], m: Match) -> dict[str, str]:
    """The state of each matched container, on the host its task names (a container of the same name on another
    host must not stand in for it)."""
    state = {}
    for x in ex.containers:
        name = m.containers.get(x.key)
        c = objects[x.host].containers.get(name or "") if x.host in objects else None
        if name and c is not None:
            state[name] = str((c.get("State") or {}).get("Status"))
    return state


def probe_findings(results: list[tuple[Probe, Result]]) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for p, r in results:
        c = p.check
        head = {"ip": f"{c.src} -> {c.dst} ({c.address} on {c.network})",
                "host": f"{c.src} -> host {c.dst_host} ({c.address})",
                "name": f"{c.src} -> the name {c.address}"}.get(c.via, f"{c.src} -> {c.address}")
        seen = "answered" if r.observed == "reach" else ("did not resolve or answer" if c.via == "name"
                                                       else "no answer")
        text = f"{head}: {seen}" + (f" ({r.rtt_ms:.2f} ms)" if r.rtt_ms is not None else "")
        text += "" if r.ok else f", expected {c.expect}" + (f": {r.cause}" if r.cause.startswith("no probe") else "")
        out.setdefault(p.task, []).append(Finding(r.ok, text))
    return out


# ---------------------------------------------------------------- the grade


def object_findings(ex: Exercise, objects: dict[str, HostObjects], m: Match) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for n in ex.networks:
        name = m.networks.get(n.key)
        out.setdefault(n.task, []).extend(
            network_findings(n, name, objects) if name else
            [Finding(False, f"network <{n.key}>: no network found that could be it")])
    for x in ex.containers:
        name = m.containers.get(x.key)
        out.setdefault(x.task, []).extend(
            container_findings(x, name, objects, m) if name else
            [Finding(False, f"container <{x.key}> ({x.host}): no container found that could be it")])
    return out


def unreachable_findings(ex: Exercise, unreachable: dict[str, str]) -> dict[str, list[Finding]]:
    """A host that cannot be asked fails every task that needs it, naming why."""
    out: dict[str, list[Finding]] = {}
    for t in ex.tasks:
        needed = {x.host for x in t.containers} | {h for n in t.networks for h in (n.hosts or ())}
        for e in t.expect:
            for key in (e.src, e.target if e.kind == "container" else ""):
                spec = ex.container(key) if key else None
                if spec is not None:
                    needed.add(spec.host)
        for h in sorted(needed & set(unreachable)):
            out.setdefault(t.id, []).append(Finding(False, f"host {h} cannot be asked: {unreachable[h]}"))
    return out


def grade(ex: Exercise, *parts: dict[str, list[Finding]]) -> list[TaskResult]:
    """The tasks with their findings; a task nothing could be checked for says so (and earns nothing)."""
    results = {t.id: TaskResult(t) for t in ex.tasks}
    for part in parts:
        for task, findings in part.items():
            results[task].findings.extend(findings)
    for r in results.values():
        if not r.findings and parts:
            r.findings.append(Finding(False, "nothing could be checked: no docker host answered"))
    return list(results.values())


def total(results: list[TaskResult]) -> tuple[int, int]:
    return sum(r.points for r in results), sum(r.task.points for r in results)


@dataclass
class Report:
    exercise: Exercise
    inventory: str
    results: list[TaskResult]
    unreachable: dict[str, str]            # docker host -> why it could not be asked
    duration_s: float
    probe_modes: dict[str, str] = field(default_factory=dict)
    probe_notes: dict[str, str] = field(default_factory=dict)
    student: str | None = None
    error: str | None = None               # a student who could not be graded at all (class mode)

    @property
    def points(self) -> int:
        return total(self.results)[0]

    @property
    def max_points(self) -> int:
        return self.exercise.max_points

    @property
    def ok(self) -> bool:
        return self.error is None and all(r.ok for r in self.results)
