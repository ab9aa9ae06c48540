"""Exercise: tasks a student does by hand (`docker network create`, `docker run`, ...), each worth points, with
the state it must leave in the playbook's own vocabulary, so that `labctl grade` can check the hosts' real objects.

Where the student chooses, the exercise says `any`: a value (`subnet: any`, `ip: any`) must then merely exist, and
a name (`name: any`) is matched to the object that fits the task best. The key of a network or container is its
handle in the exercise (used by containers' `networks` and by `expect`); the Docker name is the key unless `name`
says otherwise. Validation is pure, checks against the inventory and reports every problem at once.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from labctl.errors import Problem, ValidationError
from labctl.model.checks import DNS_NAME_RE, IFACE_RE, IMAGE_RE, Collector, join, short
from labctl.model.inventory import Inventory
from labctl.model.playbook import (
    CONTAINER_NAME_RE,
    DOCKER_NAME_RE,
    DRIVERS,
    EXPECT_FIELDS,
    EXPECT_TARGETS,
    Expectation,
    parse_aliases,
    parse_options,
    parse_port,
)
from labctl.model.yamlsrc import parse_yaml, read_source

ANY = "any"
PREDEFINED = ("bridge", "host", "none")          # Docker's own networks, referred to by these names
TOP_FIELDS = ("name", "title", "description", "tasks")
TASK_FIELDS = ("id", "title", "points", "networks", "containers", "expect", "hint")
NETWORK_FIELDS = ("name", "driver", "subnet", "gateway", "ip_range", "bridge_name", "parent", "options", "hosts")
CONTAINER_FIELDS = ("name", "host", "image", "running", "networks", "network_mode", "ports")
ATTACH_FIELDS = ("ip", "aliases")
TASK_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_POINTS = 100


@dataclass(frozen=True)
class NetworkSpec:
    key: str                                   # handle in the exercise
    name: str | None                           # Docker's name; None: the student chooses
    driver: str | None
    hosts: tuple[str, ...] | None              # None: every docker host (local drivers), any one (overlay)
    fields: tuple[tuple[str, str], ...]        # subnet, gateway, ip_range, bridge_name, parent -> value or any
    options: tuple[tuple[str, str], ...]
    task: str

    def label(self, actual: str | None = None) -> str:
        return actual or self.name or f"<{self.key}>"


@dataclass(frozen=True)
class AttachSpec:
    network: str                               # a network handle, or bridge (Docker's default bridge)
    ip: str | None                             # None: not checked; "any": some address
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContainerSpec:
    key: str
    name: str | None                           # None: the student chooses
    host: str
    image: str | None                          # None: any image
    running: bool | None                       # None: either
    networks: tuple[AttachSpec, ...] | None    # None: not checked; else exactly these
    network_mode: str | None                   # bridge | host | none | container:<handle>
    ports: tuple[str, ...] | None
    task: str


@dataclass(frozen=True)
class Task:
    id: str
    title: str
    points: int
    networks: tuple[NetworkSpec, ...]
    containers: tuple[ContainerSpec, ...]
    expect: tuple[Expectation, ...]            # src/target: container handles; network: a network handle
    hint: str = ""
    index: int = 0                             # position in the file's list, for messages


@dataclass(frozen=True)
class Exercise:
    source: str
    name: str
    title: str
    description: str
    tasks: tuple[Task, ...]

    @property
    def max_points(self) -> int:
        return sum(t.points for t in self.tasks)

    @property
    def networks(self) -> tuple[NetworkSpec, ...]:
        return tuple(n for t in self.tasks for n in t.networks)

    @property
    def containers(self) -> tuple[ContainerSpec, ...]:
        return tuple(c for t in self.tasks for c in t.containers)

    def network(self, key: str) -> NetworkSpec | None:
        return next((n for n in self.networks if n.key == key), None)

    def container(self, key: str) -> ContainerSpec | None:
        return next((c for c in self.containers if c.key == key), None)


def load_exercise(path: str, inv: Inventory) -> Exercise:
    return parse_exercise(read_source(path), path, inv)


def parse_exercise(text: str, source: str, inv: Inventory) -> Exercise:
    """Parse and validate against the inventory; raise ValidationError with every problem."""
    data = parse_yaml(text, source)
    c = Collector(source)
    if not isinstance(data, dict):
        raise ValidationError([Problem(source, "(file)", "must be a mapping with `name` and `tasks`", "type")])
    top = c.mapping(data, "", TOP_FIELDS, required=("name", "tasks"))
    name = top.get("name", "")
    if "name" in top and (not isinstance(name, str) or not TASK_ID_RE.match(name)):
        c.add("name", f"{short(name)} is not an exercise name (lower-case letters, digits, '_', '-')")
    title = _text(c, top.get("title", name), "title")
    description = _text(c, top.get("description", ""), "description")
    raw_tasks = top.get("tasks")
    if "tasks" in top and (not isinstance(raw_tasks, list) or not raw_tasks):
        c.wrong_type("tasks", "must be a non-empty list of {id, points, networks, containers, expect}")
        raw_tasks = []
    docker_hosts = tuple(h.name for h in inv.docker_hosts)
    tasks = [_task(c, i, raw, docker_hosts) for i, raw in enumerate(raw_tasks or [])]
    tasks_ok = [t for t in tasks if t is not None]
    _check_unique(c, tasks_ok)
    _check_references(c, tasks_ok, docker_hosts)
    if c.problems:
        raise ValidationError(c.problems)
    return Exercise(source=source, name=str(name), title=title, description=description, tasks=tuple(tasks_ok))


def _text(c: Collector, value: object, fld: str) -> str:
    if not isinstance(value, str):
        c.wrong_type(fld, f"must be text, got {short(value)}")
        return ""
    return value.strip()


def _task(c: Collector, i: int, value: object, docker_hosts: tuple[str, ...]) -> Task | None:
    fld = f"tasks[{i}]"
    raw = c.mapping(value, fld, TASK_FIELDS, required=("id",))
    task_id = raw.get("id")
    if "id" in raw and (not isinstance(task_id, str) or not TASK_ID_RE.match(task_id)):
        c.add(join(fld, "id"), f"{short(task_id)} is not a task id (lower-case letters, digits, '_', '-'; at most 40)")
        task_id = None
    points = c.integer(raw.get("points", 1), join(fld, "points"), 0, MAX_POINTS)
    if not any(k in raw for k in ("networks", "containers", "expect")):
        c.missing(fld, "a task checks something: give networks, containers or expect")
    tid = str(task_id or f"#{i}")
    networks = _networks(c, join(fld, "networks"), raw.get("networks"), tid, docker_hosts)
    containers = _containers(c, join(fld, "containers"), raw.get("containers"), tid, docker_hosts)
    expect = _expect(c, join(fld, "expect"), raw.get("expect"))
    title = _text(c, raw.get("title", tid), join(fld, "title"))
    hint = _text(c, raw.get("hint", ""), join(fld, "hint"))
    if task_id is None or points is None:
        return None
    return Task(id=tid, title=title, points=points, networks=networks, containers=containers, expect=expect,
                hint=hint, index=i)


def _name(c: Collector, value: object, fld: str, pattern: re.Pattern[str], key: str) -> str | None:
    """`name`: the Docker name (default: the key), or any when the student chooses it."""
    if value is None:
        value = key
    if value == ANY:
        return None
    if not isinstance(value, str) or not pattern.match(value):
        c.add(fld, f"{short(value)} is not a name Docker accepts (letters, digits, '_', '.', '-'), nor `any`")
        return None
    return value


def _any_or(c: Collector, value: object, fld: str, check: str) -> str | None:
    """A field's expected value: `any`, or a value that passes `check` (network, address, interface, text)."""
    if value == ANY:
        return ANY
    if check == "network":
        net = c.ipv4_network(value, fld)
        return str(net) if net is not None else None
    if check == "address":
        addr = c.ipv4_address(value, fld)
        return str(addr) if addr is not None else None
    if check == "iface":
        return c.string(value, fld, IFACE_RE, "Linux interface name (at most 15 characters), or `any`")
    if not isinstance(value, str | int) or isinstance(value, bool):
        c.wrong_type(fld, f"must be a single value or `any`, got {short(value)}")
        return None
    return str(value)


NETWORK_CHECKS = {"subnet": "network", "gateway": "address", "ip_range": "network", "bridge_name": "iface",
                  "parent": "iface"}


def _networks(c: Collector, fld: str, value: object, task: str,
              docker_hosts: tuple[str, ...]) -> tuple[NetworkSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        c.wrong_type(fld, "must be a mapping of network handle -> {driver, subnet, ...}")
        return ()
    result = []
    for key, spec in value.items():
        nfld = join(fld, str(key))
        if not isinstance(key, str) or not DOCKER_NAME_RE.match(key):
            c.add(nfld, f"{short(key)} is not a network handle (letters, digits, '_', '.', '-')")
            continue
        if key in PREDEFINED:
            c.conflict(nfld, f"{short(key)} is one of Docker's own networks: refer to it from a container's networks "
                        "instead of defining it")
            continue
        raw = c.mapping(spec, nfld, NETWORK_FIELDS)
        name = _name(c, raw.get("name"), join(nfld, "name"), DOCKER_NAME_RE, key)
        driver = c.choice(raw["driver"], join(nfld, "driver"), DRIVERS) if "driver" in raw else None
        fields = []
        for f, check in NETWORK_CHECKS.items():
            if f in raw:
                got = _any_or(c, raw[f], join(nfld, f), check)
                if got is not None:
                    fields.append((f, got))
        _check_network_fields(c, nfld, dict(fields), driver)
        options = parse_options(c, join(nfld, "options"), raw.get("options"))
        hosts = _hosts(c, join(nfld, "hosts"), raw["hosts"], docker_hosts) if "hosts" in raw else None
        result.append(NetworkSpec(key=key, name=name, driver=driver, hosts=hosts, fields=tuple(fields),
                                  options=options, task=task))
    return tuple(result)


def _check_network_fields(c: Collector, fld: str, fields: dict[str, str], driver: str | None) -> None:
    subnet = fields.get("subnet")
    if subnet is None or subnet == ANY:
        return
    net = ipaddress.ip_network(subnet)
    gateway = fields.get("gateway")
    if gateway not in (None, ANY) and ipaddress.ip_address(gateway) not in net:
        c.add(join(fld, "gateway"), f"{gateway} is not inside subnet {subnet}")
    ip_range = fields.get("ip_range")
    if ip_range not in (None, ANY) and not ipaddress.ip_network(ip_range).subnet_of(net):  # type: ignore[arg-type]
        c.add(join(fld, "ip_range"), f"{ip_range} is not inside subnet {subnet}")
    if "bridge_name" in fields and driver not in (None, "bridge"):
        c.conflict(join(fld, "bridge_name"), "only for driver 'bridge'")
    if "parent" in fields and driver not in (None, "macvlan"):
        c.conflict(join(fld, "parent"), "only for driver 'macvlan'")


def _hosts(c: Collector, fld: str, value: object, docker_hosts: tuple[str, ...]) -> tuple[str, ...] | None:
    if not isinstance(value, list) or not value or not all(isinstance(h, str) for h in value):
        c.wrong_type(fld, "must be a non-empty list of docker host names")
        return None
    for h in value:
        if h not in docker_hosts:
            c.add(fld, f"{short(h)} is not a docker host of the inventory; docker hosts: {', '.join(docker_hosts)}")
    return tuple(value)


def _containers(c: Collector, fld: str, value: object, task: str,
                docker_hosts: tuple[str, ...]) -> tuple[ContainerSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        c.wrong_type(fld, "must be a mapping of container handle -> {host, networks, ...}")
        return ()
    result = []
    for key, spec in value.items():
        cfld = join(fld, str(key))
        if not isinstance(key, str) or not CONTAINER_NAME_RE.match(key):
            c.add(cfld, f"{short(key)} is not a container handle (2 to 63 letters, digits, '_', '.', '-')")
            continue
        raw = c.mapping(spec, cfld, CONTAINER_FIELDS, required=("host",))
        name = _name(c, raw.get("name"), join(cfld, "name"), CONTAINER_NAME_RE, key)
        host = raw.get("host")
        if "host" in raw and host not in docker_hosts:
            c.add(join(cfld, "host"), f"{short(host)} is not a docker host of the inventory; docker hosts: "
                                      f"{', '.join(docker_hosts)}")
        image = raw.get("image", ANY)
        if image != ANY and (not isinstance(image, str) or not IMAGE_RE.match(image)):
            c.add(join(cfld, "image"), f"{short(image)} is not an image reference, nor `any`")
        running = raw.get("running", True)
        if running not in (True, False, ANY):
            c.add(join(cfld, "running"), f"{short(running)}: give true, false or any")
        networks = _attachments(c, join(cfld, "networks"), raw["networks"]) if "networks" in raw else None
        mode = raw.get("network_mode")
        if mode is not None:
            if networks:
                c.conflict(join(cfld, "network_mode"), "cannot be combined with `networks`: choose one")
            if not isinstance(mode, str) or not (mode in PREDEFINED or mode.startswith("container:")):
                c.add(join(cfld, "network_mode"), f"{short(mode)} is not allowed; allowed: bridge, host, none, "
                                                  "container:<handle>")
        ports = _ports(c, join(cfld, "ports"), raw["ports"]) if "ports" in raw else None
        result.append(ContainerSpec(key=key, name=name, host=str(host), image=None if image == ANY else str(image),
                                    running=None if running == ANY else bool(running), networks=networks,
                                    network_mode=mode if isinstance(mode, str) else None, ports=ports, task=task))
    return tuple(result)


def _attachments(c: Collector, fld: str, value: object) -> tuple[AttachSpec, ...] | None:
    if isinstance(value, list):
        if not all(isinstance(n, str) for n in value):
            c.wrong_type(fld, "a list of networks holds handles only (`[web, bridge]`); for addresses or aliases use a "
                       "mapping: `{web: {ip: 172.30.1.10}}`")
            return None
        value = {n: None for n in value}
    if not isinstance(value, dict):
        c.wrong_type(fld, "must be a mapping network -> {ip, aliases} or a list of network handles")
        return None
    result = []
    for net, spec in value.items():
        afld = join(fld, str(net))
        raw = c.mapping(spec, afld, ATTACH_FIELDS)
        ip = _any_or(c, raw["ip"], join(afld, "ip"), "address") if "ip" in raw else None
        result.append(AttachSpec(network=str(net), ip=ip, aliases=parse_aliases(c, join(afld, "aliases"),
                                                                                raw.get("aliases"))))
    return tuple(result)


def _ports(c: Collector, fld: str, value: object) -> tuple[str, ...] | None:
    if not isinstance(value, list) or not all(isinstance(p, str | int) and not isinstance(p, bool) for p in value):
        c.wrong_type(fld, "must be a list such as ['8080:80', '53/udp']")
        return None
    for i, p in enumerate(value):
        parsed = parse_port(str(p))
        if isinstance(parsed, str):
            c.add(f"{fld}[{i}]", f"{short(str(p))}: {parsed}; e.g. '8080:80', '53/udp', '127.0.0.1:8000:80'")
    return tuple(str(p) for p in value)


def _expect(c: Collector, fld: str, value: object) -> tuple[Expectation, ...]:
    """As a playbook's `expect:`; the names are checked against the whole exercise afterwards."""
    if value is None:
        return ()
    if not isinstance(value, list) or not value:
        c.wrong_type(fld, "must be a list of {from: CONTAINER, to|to_host|to_address|to_name: ..., expect: "
                          "reach|isolated}")
        return ()
    result = []
    for i, entry in enumerate(value):
        efld = f"{fld}[{i}]"
        raw = c.mapping(entry, efld, EXPECT_FIELDS, required=("from", "expect"))
        targets = [k for k in EXPECT_TARGETS if k in raw]
        if len(targets) != 1:
            c.missing(efld, "give exactly one of to (container), to_host, to_address, to_name")
            continue
        src, verdict, target, network = raw.get("from"), raw.get("expect"), raw[targets[0]], raw.get("network")
        if verdict not in ("reach", "isolated"):
            c.add(join(efld, "expect"), f"{short(verdict)} is not allowed; allowed: reach, isolated")
            continue
        if not all(isinstance(v, str) for v in (src, target)) or not isinstance(network, str | None):
            c.wrong_type(efld, "`from`, the target and `network` are single names (or an address)")
            continue
        kind = EXPECT_TARGETS[targets[0]]
        if kind == "name" and not DNS_NAME_RE.match(str(target)):
            c.add(join(efld, "to_name"), f"{short(target)} is not a DNS name")
            continue
        if kind == "address" and c.ipv4_address(target, join(efld, "to_address")) is None:
            continue
        result.append(Expectation(str(src), kind, str(target), network, str(verdict), i))
    return tuple(result)


def _check_unique(c: Collector, tasks: list[Task]) -> None:
    ids: set[str] = set()
    for t in tasks:
        if t.id in ids:
            c.conflict(f"tasks[{t.index}].id", f"task id {t.id!r} is used twice")
        ids.add(t.id)
    handles: dict[tuple[str, str], str] = {}
    names: dict[tuple[str, str, str], str] = {}
    for t in tasks:
        for kind, key, name, host in ([("network", n.key, n.name, "") for n in t.networks]
                                      + [("container", x.key, x.name, x.host) for x in t.containers]):
            if (kind, key) in handles:
                c.conflict(f"tasks[{t.index}].{kind}s.{key}", f"{kind} {key!r} is already defined in task "
                                                         f"{handles[(kind, key)]!r}: define it once, refer to it by "
                                                         "its handle elsewhere")
            handles[(kind, key)] = t.id
            if name is None:
                continue
            if (kind, name, host) in names:
                c.conflict(f"tasks[{t.index}].{kind}s.{key}", f"the Docker name {name!r} is also {kind} "
                                                         f"{names[(kind, name, host)]!r}")
            names[(kind, name, host)] = key


def _check_references(c: Collector, tasks: list[Task], docker_hosts: tuple[str, ...]) -> None:
    networks = {n.key: n for t in tasks for n in t.networks}
    containers = {x.key: x for t in tasks for x in t.containers}
    known_nets = ", ".join([*networks, *PREDEFINED[:1]])
    for t in tasks:
        for x in t.containers:
            fld = f"tasks[{t.index}].containers.{x.key}"
            for a in x.networks or ():
                if a.network not in networks and a.network != "bridge":
                    c.add(f"{fld}.networks.{a.network}", f"no network {a.network!r} in this exercise; networks: "
                                                         f"{known_nets}")
                    continue
                net = networks.get(a.network)
                if net is not None and net.driver != "overlay" and net.hosts is not None and x.host not in net.hosts:
                    c.conflict(f"{fld}.networks.{a.network}", f"network {a.network!r} is not on host {x.host!r} "
                                                         f"(its hosts: {', '.join(net.hosts)})")
                subnet = dict(net.fields).get("subnet") if net is not None else None
                if a.ip not in (None, ANY) and subnet not in (None, ANY) and \
                        ipaddress.ip_address(a.ip) not in ipaddress.ip_network(subnet):
                    c.add(f"{fld}.networks.{a.network}.ip", f"{a.ip} is not inside {a.network}'s subnet {subnet}")
                if a.network == "bridge" and (a.ip is not None or a.aliases):
                    c.conflict(f"{fld}.networks.bridge", "the default bridge takes no static IP or aliases (Docker: "
                               "'user specified IP address is supported on user defined networks only')")
            if x.network_mode and x.network_mode.startswith("container:"):
                other = containers.get(x.network_mode.split(":", 1)[1])
                if other is None:
                    c.add(f"{fld}.network_mode", f"no container {x.network_mode.split(':', 1)[1]!r} in this exercise")
                elif other.host != x.host:
                    c.conflict(f"{fld}.network_mode", f"{other.key!r} is on {other.host}, {x.key!r} on {x.host}: "
                               "a shared network stack needs both on one host")
        for e in t.expect:
            fld = f"tasks[{t.index}].expect[{e.index}]"
            if e.src not in containers:
                c.add(f"{fld}.from", f"no container {e.src!r} in this exercise")
            if e.kind == "container" and e.target not in containers:
                c.add(f"{fld}.to", f"no container {e.target!r} in this exercise")
            if e.kind == "host" and e.target not in docker_hosts:
                c.add(f"{fld}.to_host", f"{e.target!r} is not a docker host of the inventory")
            if e.network is not None and e.network not in networks and e.network not in PREDEFINED[:1]:
                c.add(f"{fld}.network", f"no network {e.network!r} in this exercise; networks: {known_nets}")
