"""What of a lab exists on its hosts, typed (pure): each docker host's answers in one `HostState`, the lab as a
whole in one `LabStatus`, the planes' view of the overlay in `ControlStatus`. JSON is made only for `--json`,
by `LabStatus.as_json()`; status, verify, graph, trace and breaks read the attributes.

`STATUS_FACTS` and `host_state` are the one query and parser: an executor asks them in one round trip per host
(labctl.executors.status) and passes the answers here."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from labctl.facts import Answers, Fact, answers, docker, host
from labctl.model.inventory import Inventory
from labctl.model.playbook import Playbook
from labctl.plan.lab import LABEL
from labctl.planes.base import PlanePlan


@dataclass(frozen=True)
class HostState:
    """One docker host as one round trip showed it (error set: it could not be asked, and the rest is empty)."""

    name: str
    engine: str = ""                                            # the engine's version ("" dockerd does not answer)
    pending: bool = False                                       # labctl's dockerd-restart journal is there
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)    # name -> `docker network inspect`
    containers: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> `docker inspect`
    vnis: dict[str, int] = field(default_factory=dict)          # network name -> VXLAN ID
    planes: dict[str, Any] = field(default_factory=dict)        # plane -> its parsed status fact
    answers: Answers | None = None                              # every answer, the callers' own facts among them
    error: str | None = None

    def __getitem__(self, f: Fact[Any]) -> Any:
        """A fact the caller added to the batch (see executors.status.gather's `also`)."""
        if self.answers is None:
            raise KeyError(f"{self.name} could not be asked: {self.error}")
        return self.answers[f]


def status_facts(label_filter: str, vnis: bool, halves: dict[str, PlanePlan], control: bool) -> list[Fact[Any]]:
    """The facts of status's round trip: the engine, the restart journal, the lab's networks and containers, the
    VNIs of its overlays (vnis) and the planes' status facts (control)."""
    facts: list[Fact[Any]] = [host.RESTART_PENDING, docker.objects(label_filter)]
    if vnis:
        facts.append(docker.vnis(label_filter))
    if control:
        facts += [h.status_fact for h in halves.values()]
    return facts


def host_state(a: Answers, label_filter: str, halves: dict[str, PlanePlan], control: bool) -> HostState:
    engine = a[docker.objects(label_filter)]
    networks = engine.networks
    by_id = a.get(docker.vnis(label_filter), {})
    found = {n["Name"]: by_id[n["Id"]] for n in networks.values() if n.get("Id") in by_id}
    for n in networks.values():
        for half in halves.values():   # a plane that carries the network on its own VXLAN devices
            vni = half.vni_of(n)
            if vni is not None:
                found[n["Name"]] = vni
    planes = {p: a[h.status_fact] for p, h in halves.items()} if control else {}
    return HostState(name=a.host, engine=engine.version, pending=a[host.RESTART_PENDING],
                     networks=networks, containers=engine.containers, vnis=found, planes=planes,
                     answers=a)


def parse_host_state(host_name: str, output: str, label_filter: str, halves: dict[str, PlanePlan],
                     vnis: bool = True, control: bool = False) -> HostState:
    """A host's output of status's script (captured) as HostState."""
    return host_state(answers(host_name, status_facts(label_filter, vnis, halves, control), output), label_filter,
                      halves, control)


@dataclass(frozen=True)
class HostRow:
    name: str
    roles: tuple[str, ...]
    engine: str | None
    error: str | None
    state: str | None            # why its dockerd is not usable (None: it is, or the host could not be asked)


@dataclass
class NetworkRow:
    name: str
    lab: str | None
    driver: str | None
    scope: str | None
    subnet: str | None
    gateway: str | None
    ip_ranges: dict[str, str] = field(default_factory=dict)    # host -> IPRange (macvlan per-host ranges)
    hosts: list[str] = field(default_factory=list)
    vni: int | None = None


@dataclass(frozen=True)
class ContainerRow:
    name: str
    host: str
    lab: str | None
    image: str | None
    state: str | None
    network_mode: str | None
    addresses: dict[str, str | None]


@dataclass(frozen=True)
class ControlStatus:
    plane: str | None            # the plane with the surest evidence (None: none yet)
    requested: str               # the playbook's overlay.control
    hosts: dict[str, dict[str, Any]]   # host -> what the planes show of it (role, VTEP, ...)


@dataclass
class StoreStatus:
    backend: str
    host: str
    url: str
    running: bool | None = None
    error: str | None = None
    contents: dict[str, Any] | None = None     # what Docker wrote into the store (Consul; asked for)
    registered: list[str] | None = None
    overlays: list[str] | None = None

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: v for k, v in d.items() if v is not None or k in ("running", "error")}


@dataclass
class LabStatus:
    lab: str | None
    inventory: str
    hosts: list[HostRow]
    networks: list[NetworkRow]
    containers: list[ContainerRow]
    missing: list[str] | None = None     # None: no playbook to compare with
    extra: list[str] | None = None
    control: ControlStatus | None = None
    store: StoreStatus | None = None
    states: dict[str, HostState] = field(default_factory=dict)   # what each host answered (not in the JSON)

    @property
    def unreachable(self) -> dict[str, str]:
        """host -> why it could not be asked."""
        return {h.name: h.error for h in self.hosts if h.error}

    @property
    def not_usable(self) -> dict[str, str]:
        """host -> why it cannot be asked or its dockerd cannot be used."""
        return {h.name: h.error or h.state or "" for h in self.hosts if h.error or h.state}

    def answered(self) -> dict[str, HostState]:
        """The hosts that answered."""
        return {n: s for n, s in self.states.items() if s.error is None}

    def container(self, name: str) -> ContainerRow | None:
        return next((c for c in self.containers if c.name == name), None)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LabStatus:
        """as_json()'s inverse (a saved `labctl status --json`; the answers behind it are not in it)."""
        control, store = d.get("control"), d.get("store")
        return cls(
            lab=d.get("lab"), inventory=d.get("inventory", ""),
            hosts=[HostRow(h["name"], tuple(h.get("roles", ())), h.get("engine"), h.get("error"), h.get("state"))
                   for h in d.get("hosts", [])],
            networks=[NetworkRow(**{k: n.get(k) for k in ("name", "lab", "driver", "scope", "subnet", "gateway",
                                                           "vni")},
                                 ip_ranges=dict(n.get("ip_ranges") or {}), hosts=list(n.get("hosts") or []))
                      for n in d.get("networks", [])],
            containers=[ContainerRow(**{k: c.get(k) for k in ("name", "host", "lab", "image", "state",
                                                               "network_mode")},
                                     addresses=dict(c.get("addresses") or {})) for c in d.get("containers", [])],
            missing=d.get("missing"), extra=d.get("extra"),
            control=ControlStatus(control.get("plane"), control.get("requested", ""), control.get("hosts", {}))
            if control else None,
            store=StoreStatus(**store) if store else None)

    def as_json(self) -> dict[str, Any]:
        """The documented JSON of `labctl status --json` (docs/commands.md)."""
        result: dict[str, Any] = {
            "lab": self.lab, "inventory": self.inventory,
            "hosts": [{**asdict(h), "roles": list(h.roles)} for h in self.hosts],
            "networks": [asdict(n) for n in self.networks], "containers": [asdict(c) for c in self.containers]}
        if self.missing is not None:
            result["missing"], result["extra"] = self.missing, self.extra or []
        if self.control is not None:
            result["control"] = asdict(self.control)
        if self.store is not None:
            result["store"] = self.store.as_json()
        return result


def engine_state(s: HostState) -> str | None:
    """Why the host's dockerd is not usable, or None when it is (or the host could not be asked: see error)."""
    if s.error:
        return None
    if s.pending:
        return ("dockerd restart pending: a run was interrupted while restarting it; `labctl up` or `labctl down` "
                "finishes it")
    if not s.engine:
        return "dockerd not running"
    return None


def summarize(inv: Inventory, pb: Playbook | None, states: dict[str, HostState]) -> LabStatus:
    host_rows = []
    networks: dict[str, NetworkRow] = {}
    containers = []
    for h in inv.docker_hosts:
        s = states.get(h.name, HostState(h.name))
        host_rows.append(HostRow(h.name, tuple(h.roles), s.engine or None, s.error, engine_state(s)))
        for n in s.networks.values():
            cfg = (n.get("IPAM", {}).get("Config") or [{}])[0]
            entry = networks.setdefault(n["Name"], NetworkRow(
                name=n["Name"], lab=(n.get("Labels") or {}).get(LABEL), driver=n.get("Driver"),
                scope=n.get("Scope"), subnet=cfg.get("Subnet"), gateway=cfg.get("Gateway") or None))
            entry.hosts.append(h.name)
            if cfg.get("IPRange"):
                entry.ip_ranges[h.name] = cfg["IPRange"]
            if entry.vni is None and s.vnis.get(n["Name"]) is not None:
                entry.vni = s.vnis[n["Name"]]
        for c in s.containers.values():
            nets = c.get("NetworkSettings", {}).get("Networks") or {}
            containers.append(ContainerRow(
                name=str(c["Name"]).lstrip("/"), host=h.name, lab=(c["Config"].get("Labels") or {}).get(LABEL),
                image=c["Config"].get("Image"), state=c["State"].get("Status"),
                network_mode=c.get("HostConfig", {}).get("NetworkMode"),
                addresses={k: v.get("IPAddress") or None for k, v in sorted(nets.items())}))
    result = LabStatus(lab=pb.name if pb else None, inventory=inv.source, hosts=host_rows,
                       networks=sorted(networks.values(), key=lambda n: n.name),
                       containers=sorted(containers, key=lambda c: (c.host, c.name)), states=dict(states))
    if pb is not None:
        result.missing = missing(pb, result)
        result.extra = extra(pb, result)
    return result


def control_status(pb: Playbook, halves: dict[str, PlanePlan], facts: dict[str, dict[str, Any]]) -> ControlStatus:
    """The overlay's control plane as the hosts show it (facts: plane -> host -> its parsed status fact): the
    plane with the surest evidence (its own objects for this lab on the hosts, then what the playbook implies),
    and per host what each plane shown always shows (swarm: the host's role) and what the active plane reports,
    its VTEP address among them."""
    ranked = sorted(((half.evidence(pb, facts[p]), -i, p) for i, (p, half) in enumerate(halves.items())),
                    reverse=True)
    plane = ranked[0][2] if ranked and ranked[0][0] > 0 else None
    hosts = sorted({n for per_host in facts.values() for n in per_host})
    rows: dict[str, dict[str, Any]] = {n: {} for n in hosts}
    for n in hosts:
        for p, half in halves.items():
            if half.shown_always:
                rows[n].update(half.host_row(pb, facts[p][n]))
        if plane is not None:
            rows[n].update(halves[plane].host_row(pb, facts[plane][n]))
    return ControlStatus(plane=plane, requested=pb.control, hosts=rows)


def extra(pb: Playbook, status: LabStatus) -> list[str]:
    """The lab's objects that the playbook no longer has: what `up` removes."""
    wanted_ctrs = {(c.host, c.name) for c in pb.containers}
    result = []
    for n in status.networks:
        net = next((x for x in pb.networks if x.name == n.name), None)
        hosts = [h for h in n.hosts if net is None or (net.driver != "overlay" and h not in net.hosts)]
        if n.lab == pb.name and hosts:
            result.append(f"networks.{n.name}: on {', '.join(hosts)}, not in the playbook (`up` removes it)")
    for c in status.containers:
        if c.lab == pb.name and (c.host, c.name) not in wanted_ctrs:
            result.append(f"containers.{c.name}: on {c.host}, not in the playbook (`up` removes it)")
    return result


def missing(pb: Playbook, status: LabStatus) -> list[str]:
    """Playbook entries that do not exist or do not run: what `up` would still do."""
    have_nets = {n.name: set(n.hosts) for n in status.networks}
    have_ctrs = {(c.host, c.name): c.state for c in status.containers}
    result = []
    for net in pb.networks:
        absent = [h for h in net.hosts if h not in have_nets.get(net.name, set())]
        if absent:
            result.append(f"networks.{net.name}: not on {', '.join(absent)}")
    for c in pb.containers:
        state = have_ctrs.get((c.host, c.name))
        if state != "running":
            result.append(f"containers.{c.name}: {state or 'absent'} on {c.host}")
    return result
