"""Playbook: the lab on top of an inventory (store, docker0 addressing, networks, containers).

Validation is pure and checks against the inventory, so that every mistake is found before any host is
touched: overlapping subnets (between networks, with the derived docker0 `bip`s, with the underlay), gateways
and ranges outside their subnet, static addresses that Docker would refuse or that would collide across hosts,
unknown references, and names Docker would reject.
"""

from __future__ import annotations

import ipaddress
import math
import posixpath
import re
import zlib
from dataclasses import dataclass, field, replace

from labctl.errors import Problem, ValidationError
from labctl.model.checks import DNS_NAME_RE, IFACE_RE, IMAGE_RE, Collector, join, short
from labctl.model.inventory import Inventory, host_addresses
from labctl.model.yamlsrc import parse_yaml, read_source
from labctl.planes import names as plane_names
from labctl.planes import traits as plane_traits

BACKENDS = ("etcd", "consul")
STORE_DATA_ROOT = "/var/lib/labctl"
STORE_PORTS = {"etcd": 2379, "consul": 8500}
DRIVERS = ("bridge", "macvlan", "overlay")
DEFAULT_BRIDGE = "bridge"    # Docker's own default bridge network (docker0), which a container may also join
LOCAL_DRIVERS = ("bridge", "macvlan")
MODES = ("bridge", "host", "none")
DOCKER_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")  # network and lab names
# Docker's own rule for container names is [a-zA-Z0-9][a-zA-Z0-9_.-]+ (at least two characters: `docker run
# --name x` fails with "Invalid container name (x)"); 63 at most because the name is also the hostname.
CONTAINER_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{1,62}$")
ALIAS_RE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
PORT_RE = re.compile(r"^((\d{1,3}\.){3}\d{1,3}:)?(\d{1,5}:)?\d{1,5}(/(tcp|udp|sctp))?$")
DEFAULT_BIP_PATTERN = "172.17.{octet}.1/24"
DOCKER_DEFAULT_POOL = ipaddress.ip_network("172.17.0.0/16")

TOP_FIELDS = ("name", "overlay", "store", "docker0", "networks", "containers", "images", "expect")
OVERLAY_FIELDS = ("control",)
VXLANID_OPTION = "com.docker.network.driver.overlay.vxlanid_list"
VNI_FIRST, VNI_LAST = 4096, 2**24 - 1
STORE_FIELDS = ("backend", "data_dir", "port", "image")
DOCKER0_FIELDS = ("bip",)
NETWORK_FIELDS = ("driver", "subnet", "gateway", "ip_range", "bridge_name", "parent", "mtu", "hosts", "options")
CONTAINER_FIELDS = ("host", "image", "command", "networks", "network_mode", "ports")
ATTACH_FIELDS = ("ip", "aliases")


@dataclass(frozen=True)
class Store:
    backend: str
    host: str
    address: str | None   # underlay address when the provider knows it (sandbox, static with IPs)
    port: int
    data_dir: str
    image: str | None     # consul only: run the server from this image instead of a binary

    @property
    def url(self) -> str:
        return f"{self.backend}://{self.address or self.host}:{self.port}"


@dataclass(frozen=True)
class Network:
    name: str
    driver: str
    subnet: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address | None
    ip_range: ipaddress.IPv4Network | None
    hosts: tuple[str, ...]                       # docker hosts that get it (overlay: all, created once)
    bridge_name: str | None = None
    parent: str | None = None
    mtu: int | None = None
    options: tuple[tuple[str, str], ...] = ()
    host_ranges: tuple[tuple[str, str], ...] = ()  # macvlan: computed disjoint ip_range per host
    attachable: bool = False                     # overlay under swarm: standalone containers may join it
    vni: int | None = None                       # overlay under `control: vxlan`: labctl's own VXLAN ID

    @property
    def is_local(self) -> bool:
        return self.driver in LOCAL_DRIVERS

    def range_for(self, host: str) -> str | None:
        for h, r in self.host_ranges:
            if h == host:
                return r
        return str(self.ip_range) if self.ip_range else None


@dataclass(frozen=True)
class Attachment:
    network: str
    ip: str | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Container:
    name: str
    host: str
    image: str
    command: tuple[str, ...]
    networks: tuple[Attachment, ...] = ()
    network_mode: str | None = None    # None = user networks (or the default bridge when there are none)
    ports: tuple[str, ...] = ()


@dataclass(frozen=True)
class Expectation:
    """An `expect:` entry: from a container to a container, a host, an address or a name; reach or isolated."""

    src: str
    kind: str             # "container" | "host" | "address" | "name"
    target: str
    network: str | None   # None: every network the two share (container), else "-"
    expect: str           # "reach" | "isolated"
    index: int            # position in the playbook's list, for messages


@dataclass(frozen=True)
class Playbook:
    source: str
    name: str
    store: Store | None
    bips: dict[str, str]                 # docker host -> docker0 bip (empty when off)
    networks: tuple[Network, ...]
    containers: tuple[Container, ...]
    expect: tuple[Expectation, ...] = field(default_factory=tuple)
    images: tuple[tuple[str, str], ...] = ()  # image ref -> archive on the controller (path relative to the file)
    control: str = "auto"                     # overlay control plane: auto or a plane's name (labctl.planes)

    def network(self, name: str) -> Network:
        return next(n for n in self.networks if n.name == name)

    def driver_of(self, network: str) -> str:
        """A container's network's driver; `bridge` (Docker's default bridge, which a container may name beside its
        user networks) is not one of the playbook's networks."""
        return "bridge" if network == DEFAULT_BRIDGE else self.network(network).driver

    def container(self, name: str) -> Container:
        return next(c for c in self.containers if c.name == name)


def load_playbook(path: str, inv: Inventory) -> Playbook:
    return parse_playbook(read_source(path), path, inv)


def parse_playbook(text: str, source: str, inv: Inventory) -> Playbook:
    """Parse and validate against the inventory; raise ValidationError with every problem."""
    data = parse_yaml(text, source)
    c = Collector(source)
    if not isinstance(data, dict):
        raise ValidationError([Problem(source, "(file)", "must be a mapping with 'networks' and/or 'containers'",
                                        "type")])
    top = c.mapping(data, "", TOP_FIELDS)
    name = top.get("name", inv.name)
    if not isinstance(name, str) or not DOCKER_NAME_RE.match(name):
        c.add("name", f"{short(name)} is not a valid lab name (letters, digits, '_', '.', '-')")
    host_addr = _host_addresses(inv)
    networks = _networks(c, top.get("networks"), inv)
    control = _control(c, top.get("overlay"))
    traits = plane_traits(control) if control != "auto" else None
    store = _store(c, top.get("store"), inv, host_addr, traits is not None and traits.store == "required"
                   and any(n.driver == "overlay" for n in networks), control)
    if traits is not None and traits.store == "refused" and store is not None:
        c.conflict("store", f"not used with `overlay: {{control: {control}}}` (it is its own control plane): remove "
                       "`store:`, or use control auto or kvstore")
    if traits is not None and traits.own_vnis:
        networks = _vxlan_ids(c, networks, str(name))
    bips = _bips(c, top.get("docker0"), inv, host_addr)
    _check_overlaps(c, networks, bips, inv)
    containers = _containers(c, top.get("containers"), inv, {n.name: n for n in networks})
    networks = _assign_macvlan_ranges(c, networks, containers, control)
    expect = _expectations(c, top.get("expect"), inv, containers, networks)
    images = _images(c, top.get("images"), source)
    if c.problems:
        raise ValidationError(c.problems)
    return Playbook(source=source, name=str(name), store=store, bips=bips, networks=tuple(networks),
                    containers=tuple(containers), expect=tuple(expect), images=images, control=control)


def _control(c: Collector, value: object) -> str:
    raw = c.mapping(value, "overlay", OVERLAY_FIELDS)
    if "control" not in raw:
        return "auto"
    return c.choice(raw.get("control"), "overlay.control", controls()) or "auto"


def controls() -> tuple[str, ...]:
    """The words `overlay.control` takes: auto (labctl.plan.controlplane decides from the engines) or a plane."""
    return ("auto", *plane_names())


EXPECT_TARGETS = {"to": "container", "to_host": "host", "to_address": "address", "to_name": "name"}
EXPECT_FIELDS = ("from", *EXPECT_TARGETS, "network", "expect")


def _expectations(c: Collector, value: object, inv: Inventory, containers: list[Container],
                  networks: list[Network]) -> tuple[Expectation, ...]:
    """`expect:` entries that add to or override the expectations verify derives from the playbook."""
    if value is None:
        return ()
    if not isinstance(value, list):
        c.wrong_type("expect", "must be a list of {from: CONTAINER, to|to_host|to_address|to_name: ..., expect: "
                        "reach|isolated, network: NAME}")
        return ()
    names = {x.name for x in containers}
    result = []
    for i, raw_entry in enumerate(value):
        fld = f"expect[{i}]"
        raw = c.mapping(raw_entry, fld, EXPECT_FIELDS, required=("from", "expect"))
        if "from" not in raw or "expect" not in raw:
            continue
        src, verdict = raw.get("from"), raw.get("expect")
        if not isinstance(src, str) or not isinstance(verdict, str):
            c.wrong_type(fld, "`from` is a container name and `expect` is reach or isolated (plain words, not lists)")
            continue
        targets = [k for k in EXPECT_TARGETS if k in raw]
        ok = True
        if src not in names:
            c.add(f"{fld}.from", f"no container {short(src)} in this playbook")
            ok = False
        if verdict not in ("reach", "isolated"):
            c.add(f"{fld}.expect", f"{short(verdict)} is not allowed; allowed: reach, isolated")
            ok = False
        if len(targets) != 1:
            c.missing(fld, "give exactly one of to (container), to_host, to_address, to_name")
            continue
        key = targets[0]
        if not isinstance(raw[key], str | int) or isinstance(raw[key], bool):
            c.wrong_type(f"{fld}.{key}", f"must be a single name or address, got {short(raw[key])}")
            continue
        target = str(raw[key])
        kind = EXPECT_TARGETS[key]
        if kind == "container" and target not in names:
            c.add(f"{fld}.to", f"no container {short(target)} in this playbook")
            ok = False
        elif kind == "host" and target not in {h.name for h in inv.docker_hosts}:
            c.add(f"{fld}.to_host", f"{short(target)} is not a docker host of the inventory")
            ok = False
        elif kind == "name" and not DNS_NAME_RE.match(target):
            c.add(f"{fld}.to_name", f"{short(target)} is not a DNS name (letters, digits, '-', dots between labels)")
            ok = False
        elif kind == "address" and not _is_ip(target):
            c.add(f"{fld}.to_address", f"{short(target)} is not an IPv4 address")
            ok = False
        network = raw.get("network")
        if network is not None and not isinstance(network, str):
            c.wrong_type(f"{fld}.network", f"must be a network name, got {short(network)}")
            ok = False
        elif network is not None and network not in {n.name for n in networks} | {"bridge"}:
            c.add(f"{fld}.network", f"no network {short(network)} in this playbook")
            ok = False
        if ok:
            result.append(Expectation(str(src), kind, target, None if network is None else str(network),
                                      str(verdict), i))
    return tuple(result)


def _is_ip(text: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(text), ipaddress.IPv4Address)
    except ValueError:
        return False


def _images(c: Collector, value: object, source: str) -> tuple[tuple[str, str], ...]:
    """`images: {ref: path}`: where to load an image from when no registry is reachable from a host."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        c.wrong_type("images", "must map image names to archives on this machine, e.g. `nginx:1.25: images/nginx.tar`")
        return ()
    result = []
    base = posixpath.dirname(source)
    for ref, path in value.items():
        if not isinstance(ref, str) or not IMAGE_RE.match(ref):
            c.add(f"images.{ref}", f"{short(ref)} is not a valid image reference")
        elif not isinstance(path, str) or not path.strip():
            c.add(f"images.{ref}", "give the path of a `docker save` tar, a root filesystem tar or a directory")
        else:
            result.append((ref, posixpath.join(base, path)))
    return tuple(result)


def _host_addresses(inv: Inventory) -> dict[str, ipaddress.IPv4Address]:
    """Underlay addresses known before contacting hosts (sandbox: computed; static: when given as IPs)."""
    raw = host_addresses(inv)
    result: dict[str, ipaddress.IPv4Address] = {}
    for name, addr in raw.items():
        try:
            ip = ipaddress.ip_address(addr or "")
        except ValueError:
            continue
        if isinstance(ip, ipaddress.IPv4Address):
            result[name] = ip
    return result


# ---------------------------------------------------------------- store


def _store(c: Collector, value: object, inv: Inventory, host_addr: dict[str, ipaddress.IPv4Address],
           needed: bool, control: str = "auto") -> Store | None:
    if value is None:
        if needed:
            c.missing("store", f"overlay networks with `control: {control}` need a cluster store: add "
                               "`store: {backend: etcd}` (or consul), or use `overlay: {control: swarm}` (or auto)")
        return None
    raw = c.mapping(value, "store", STORE_FIELDS, required=("backend",))
    backend = c.choice(raw.get("backend"), "store.backend", BACKENDS) if "backend" in raw else None
    host = inv.store_host
    if host is None:
        c.missing("store", f"the inventory {inv.source} has no host with role 'store'; give one host `roles: [store]`")
    port = c.integer(raw.get("port", STORE_PORTS.get(backend or "", 2379)), "store.port", 1, 65535)
    data_dir = raw.get("data_dir", f"/var/lib/labctl/{backend or 'store'}")
    if (not isinstance(data_dir, str) or not re.match(r"^/[A-Za-z0-9_./-]+$", data_dir) or ".." in data_dir
            or not data_dir.startswith(STORE_DATA_ROOT + "/") or data_dir.rstrip("/") == STORE_DATA_ROOT):
        c.add("store.data_dir", f"{short(data_dir)} must be a directory under {STORE_DATA_ROOT}/ (letters, digits, "
                                "'_', '.', '-', '/'): `down` wipes it, so it may not point anywhere else")
    image = raw.get("image")
    if image is not None:
        if backend != "consul":
            c.conflict("store.image", "only for backend 'consul' (etcd runs from the distribution's package)")
        elif not isinstance(image, str) or not IMAGE_RE.match(image):
            c.add("store.image", f"{short(image)} is not a valid image reference")
    if backend is None or host is None or port is None:
        return None
    addr = host_addr.get(host.name)
    return Store(backend=backend, host=host.name, address=str(addr) if addr else None, port=port,
                 data_dir=str(data_dir), image=image if isinstance(image, str) else None)


# ---------------------------------------------------------------- docker0


def _bips(c: Collector, value: object, inv: Inventory, host_addr: dict[str, ipaddress.IPv4Address]) -> dict[str, str]:
    raw = c.mapping(value, "docker0", DOCKER0_FIELDS)
    bip = raw.get("bip", "auto")
    if bip in ("off", False, None):
        return {}
    if bip == "auto":
        bip = DEFAULT_BIP_PATTERN
    result: dict[str, str] = {}
    if isinstance(bip, str) and "{octet}" in bip:
        for h in inv.docker_hosts:
            addr = host_addr.get(h.name)
            if addr is None:
                c.add("docker0.bip", f"cannot derive docker0 for host {short(h.name)}: its address is not an IP "
                                     "known before connecting; give explicit bips per host or `bip: off`")
                continue
            # not str.format: a pattern such as "{0}" or "{octet.x}" would raise instead of being refused
            result[h.name] = bip.replace("{octet}", str(int(addr) & 0xFF))
    elif isinstance(bip, dict):
        for h in inv.docker_hosts:
            if h.name in bip:
                result[h.name] = str(bip[h.name])
        for name in bip:
            if name not in {h.name for h in inv.docker_hosts}:
                c.add(f"docker0.bip.{name}", f"no docker host {short(name)} in the inventory")
    else:
        c.wrong_type("docker0.bip", "must be auto, off, a pattern with {octet} (e.g. 172.17.{octet}.1/24) or a mapping "
                             "host -> address/prefix")
        return {}
    for host, value_ in list(result.items()):
        try:
            iface = ipaddress.IPv4Interface(value_)
        except ValueError:
            c.add(f"docker0.bip.{host}", f"{short(value_)} is not an address/prefix such as 172.17.11.1/24")
            del result[host]
            continue
        if iface.ip in (iface.network.network_address, iface.network.broadcast_address):
            c.add(f"docker0.bip.{host}", f"{value_} must be a host address (the bridge's own IP), not the "
                                         "network or broadcast address")
    return result


# ---------------------------------------------------------------- networks


def _networks(c: Collector, value: object, inv: Inventory) -> list[Network]:
    if value is None:
        return []
    if not isinstance(value, dict):
        c.wrong_type("networks", "must be a mapping of network name -> {driver, subnet, ...}")
        return []
    docker_hosts = [h.name for h in inv.docker_hosts]
    result = []
    for name, spec in value.items():
        fld = f"networks.{name}"
        if not isinstance(name, str) or not DOCKER_NAME_RE.match(name):
            c.add(fld, f"{short(name)} is not a name Docker accepts (letters, digits, '_', '.', '-')")
            continue
        if name in ("bridge", "host", "none", "default"):
            c.conflict(fld, f"{short(name)} is one of Docker's predefined networks; choose another name")
            continue
        raw = c.mapping(spec, fld, NETWORK_FIELDS, required=("driver", "subnet"))
        net = _network(c, fld, name, raw, inv, docker_hosts)
        if net is not None:
            result.append(net)
    return result


def _network(c: Collector, fld: str, name: str, raw: dict, inv: Inventory, docker_hosts: list[str]) -> Network | None:
    driver = c.choice(raw.get("driver"), join(fld, "driver"), DRIVERS) if "driver" in raw else None
    subnet = c.ipv4_network(raw["subnet"], join(fld, "subnet")) if "subnet" in raw else None
    gateway = c.ipv4_address(raw["gateway"], join(fld, "gateway")) if "gateway" in raw else None
    ip_range = c.ipv4_network(raw["ip_range"], join(fld, "ip_range")) if "ip_range" in raw else None
    if subnet is not None and gateway is not None and (
            gateway not in subnet or gateway in (subnet.network_address, subnet.broadcast_address)):
        c.add(join(fld, "gateway"), f"{gateway} is not a usable address of subnet {subnet}")
    if subnet is not None and ip_range is not None and not ip_range.subnet_of(subnet):
        c.add(join(fld, "ip_range"), f"{ip_range} is not inside subnet {subnet}")
    hosts = _network_hosts(c, fld, raw, driver, docker_hosts)
    bridge_name = raw.get("bridge_name")
    if bridge_name is not None:
        if driver != "bridge":
            c.conflict(join(fld, "bridge_name"), "only for driver 'bridge'")
        else:
            c.string(bridge_name, join(fld, "bridge_name"), IFACE_RE, "Linux interface name (at most 15 characters)")
    parent = raw.get("parent")
    if driver == "macvlan":
        parent = c.string(parent if parent is not None else inv.underlay_interface, join(fld, "parent"), IFACE_RE,
                          "interface name")
    elif parent is not None:
        c.conflict(join(fld, "parent"), "only for driver 'macvlan'")
        parent = None
    mtu = c.integer(raw["mtu"], join(fld, "mtu"), 576, 9216) if "mtu" in raw else None
    options = parse_options(c, join(fld, "options"), raw.get("options"))
    _check_known_options(c, join(fld, "options"), options, driver)
    if driver is None or subnet is None:
        return None
    return Network(name=name, driver=driver, subnet=subnet, gateway=gateway, ip_range=ip_range, hosts=hosts,
                   bridge_name=bridge_name if isinstance(bridge_name, str) else None,
                   parent=parent if isinstance(parent, str) else None, mtu=mtu, options=options)


def _network_hosts(c: Collector, fld: str, raw: dict, driver: str | None, docker_hosts: list[str]) -> tuple[str, ...]:
    if "hosts" not in raw:
        return tuple(docker_hosts)
    if driver == "overlay":
        c.conflict(join(fld, "hosts"), "an overlay network is global: it exists on every docker host; remove `hosts`")
        return tuple(docker_hosts)
    value = raw["hosts"]
    if not isinstance(value, list) or not value:
        c.wrong_type(join(fld, "hosts"), "must be a non-empty list of docker host names")
        return ()
    for h in value:
        if h not in docker_hosts:
            c.add(join(fld, "hosts"), f"{short(h)} is not a docker host of the inventory; docker hosts: "
                                      f"{', '.join(docker_hosts)}")
    return tuple(h for h in value if h in docker_hosts)


def parse_options(c: Collector, fld: str, value: object) -> tuple[tuple[str, str], ...]:
    """Driver options: name -> text (booleans as Docker writes them); also for exercises."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        c.wrong_type(fld, "must be a mapping of driver option -> value")
        return ()
    result = []
    for k, v in value.items():
        if not isinstance(k, str) or not re.match(r"^[a-z0-9_.-]+$", k) or not isinstance(v, str | int | bool):
            c.wrong_type(join(fld, str(k)), "driver options are name -> string (e.g. "
                                            "com.docker.network.driver.mtu: '1400')")
            continue
        result.append((k, str(v).lower() if isinstance(v, bool) else str(v)))
    return tuple(result)


BOOL_WORDS = ("1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False")  # Go's ParseBool
MACVLAN_MODES = ("bridge", "private", "vepa", "passthru")


def _check_known_options(c: Collector, fld: str, options: tuple[tuple[str, str], ...], driver: str | None) -> None:
    """The values of driver options labctl knows, checked as Docker would check them, so that Docker never refuses
    a network after the old one was removed (seen: mtu '1400x' took four containers and the overlay with it)."""
    for key, value in options:
        where = join(fld, key)
        if key == "com.docker.network.driver.mtu":
            if not value.isdigit() or not 576 <= int(value) <= 9216:
                c.add(where, f"{short(value)} is not an MTU from 576 to 9216 (or use the network's `mtu` field)")
        elif key in ("com.docker.network.bridge.enable_icc", "com.docker.network.bridge.enable_ip_masquerade"):
            if value not in BOOL_WORDS:
                c.add(where, f"{short(value)} is not true or false")
        elif key == "com.docker.network.bridge.host_binding_ipv4":
            if not _is_ip(value):
                c.add(where, f"{short(value)} is not an IPv4 address")
        elif key == "com.docker.network.bridge.name":
            c.conflict(where, "use the network's `bridge_name` field instead")
        elif key == "parent":
            c.conflict(where, "use the network's `parent` field instead")
        elif key == "macvlan_mode":
            if driver != "macvlan":
                c.conflict(where, "only for driver 'macvlan'")
            elif value not in MACVLAN_MODES:
                c.add(where, f"{short(value)} is not allowed; allowed: {', '.join(MACVLAN_MODES)}")
        elif key == "com.docker.network.driver.overlay.vxlanid_list":
            ids = value.split(",")
            if driver != "overlay":
                c.conflict(where, "only for driver 'overlay'")
            elif not all(i.isdigit() and 1 <= int(i) <= 16777215 for i in ids):
                c.add(where, f"{short(value)} is not a list of VXLAN IDs from 1 to 16777215")
        if key.startswith("com.docker.network.bridge.") and driver not in (None, "bridge"):
            c.conflict(where, "only for driver 'bridge'")


def _check_overlaps(c: Collector, networks: list[Network], bips: dict[str, str], inv: Inventory) -> None:
    for i, a in enumerate(networks):
        for b in networks[i + 1:]:
            if not a.subnet.overlaps(b.subnet):
                continue
            if a.is_local and b.is_local and not set(a.hosts) & set(b.hosts):
                continue  # per-host networks on different hosts never meet
            c.conflict(f"networks.{b.name}.subnet", f"{b.subnet} overlaps network {short(a.name)} ({a.subnet}): Docker "
                                               "would refuse it with 'Pool overlaps with other one on this address "
                                               "space'")
    bip_nets = {h: ipaddress.IPv4Interface(v).network for h, v in bips.items() if _is_iface(v)}
    for n in networks:
        for h, bnet in bip_nets.items():
            if h in n.hosts and n.subnet.overlaps(bnet):
                c.conflict(f"networks.{n.name}.subnet", f"{n.subnet} overlaps docker0 of {h} ({bips[h]}); change the "
                                                   "subnet or docker0.bip")
        if inv.subnet is not None and n.subnet.overlaps(inv.subnet):
            c.conflict(f"networks.{n.name}.subnet", f"{n.subnet} overlaps the underlay {inv.subnet}: hosts would lose "
                                               "their route to each other")
        if not bips and n.subnet.overlaps(DOCKER_DEFAULT_POOL):
            c.conflict(f"networks.{n.name}.subnet", f"{n.subnet} overlaps docker0's default {DOCKER_DEFAULT_POOL}")
    seen: dict[ipaddress.IPv4Network, str] = {}
    for h, bnet in bip_nets.items():
        if inv.subnet is not None and bnet.overlaps(inv.subnet):
            c.conflict(f"docker0.bip.{h}", f"{bips[h]} overlaps the underlay {inv.subnet}")
        for other_net, other in seen.items():
            if bnet.overlaps(other_net):
                c.conflict(f"docker0.bip.{h}", f"{bips[h]} overlaps docker0 of {other} ({bips[other]}): a fault would "
                                          "not point at its host; give each host its own subnet")
        seen[bnet] = h


def _is_iface(value: str) -> bool:
    try:
        ipaddress.IPv4Interface(value)
        return True
    except ValueError:
        return False


# ---------------------------------------------------------------- containers


def _containers(c: Collector, value: object, inv: Inventory, networks: dict[str, Network]) -> list[Container]:
    if value is None:
        return []
    if not isinstance(value, dict):
        c.wrong_type("containers", "must be a mapping of container name -> {host, networks, ...}")
        return []
    docker_hosts = [h.name for h in inv.docker_hosts]
    result: list[Container] = []
    for name, spec in value.items():
        fld = f"containers.{name}"
        if not isinstance(name, str) or not CONTAINER_NAME_RE.match(name):
            c.add(fld, f"{short(name)} is not a container name Docker accepts (2 to 63 characters: a letter or digit, "
                       "then letters, digits, '_', '.', '-')")
            continue
        raw = c.mapping(spec, fld, CONTAINER_FIELDS, required=("host",))
        host = raw.get("host")
        if "host" in raw and host not in docker_hosts:
            c.add(join(fld, "host"), f"{short(host)} is not a docker host of the inventory; docker hosts: "
                                     f"{', '.join(docker_hosts)}")
        image = raw.get("image", inv.image)
        if not isinstance(image, str) or not IMAGE_RE.match(image):
            c.add(join(fld, "image"), f"{short(image)} is not a valid image reference")
        command = _command(c, join(fld, "command"), raw.get("command"))
        # an unknown host is reported once, above, not again for every network it would lack
        attachments = _attachments(c, fld, raw.get("networks"), networks, host if host in docker_hosts else None)
        mode = raw.get("network_mode")
        if mode is not None:
            if attachments:
                c.conflict(join(fld, "network_mode"), "cannot be combined with `networks`: choose one")
            if not isinstance(mode, str) or not (mode in MODES or mode.startswith("container:")):
                c.add(join(fld, "network_mode"), f"{short(mode)} is not allowed; allowed: {', '.join(MODES)}, "
                                                 "container:<name>")
        ports = _ports(c, join(fld, "ports"), raw.get("ports"), mode)
        if not isinstance(host, str):
            host = str(host)
        result.append(Container(name=name, host=str(host), image=str(image), command=command,
                                networks=tuple(attachments), network_mode=mode if isinstance(mode, str) else None,
                                ports=ports))
    _check_container_refs(c, result)
    _check_static_ips(c, result, networks)
    _check_published_ports(c, result)
    _check_aliases(c, result)
    return result


def _command(c: Collector, fld: str, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return ("sh", "-c", value)
    if isinstance(value, list) and value and all(isinstance(v, str | int) for v in value):
        return tuple(str(v) for v in value)
    c.wrong_type(fld, "must be a string (run by sh -c) or a non-empty list of arguments")
    return ()


def _attachments(c: Collector, fld: str, value: object, networks: dict[str, Network],
                 host: str | None) -> list[Attachment]:
    if value is None:
        return []
    if isinstance(value, list):
        if not all(isinstance(n, str) for n in value):
            c.wrong_type(join(fld, "networks"), "a list of networks holds names only (`[ov, mv]`); for addresses or "
                                         "aliases use a mapping: `{ov: {ip: 172.30.0.5}}`")
            return []
        value = {n: None for n in value}
    if not isinstance(value, dict):
        c.wrong_type(join(fld, "networks"), "must be a mapping network -> {ip, aliases} or a list of network names")
        return []
    result = []
    for net_name, spec in value.items():
        afld = f"{fld}.networks.{net_name}"
        if net_name == DEFAULT_BRIDGE:
            result += _default_bridge(c, afld, spec)
            continue
        net = networks.get(net_name)
        if net is None:
            c.add(afld, f"no network {short(net_name)} in this playbook; networks: {', '.join(networks) or '(none)'}")
            continue
        if net.is_local and host is not None and host not in net.hosts:
            c.conflict(afld, f"network {short(net_name)} ({net.driver}) does not exist on host {short(host)}; "
                             f"its hosts: {', '.join(net.hosts)}")
        raw = c.mapping(spec, afld, ATTACH_FIELDS)
        ip = None
        if "ip" in raw:
            addr = c.ipv4_address(raw["ip"], join(afld, "ip"))
            if addr is not None:
                if addr not in net.subnet or addr in (net.subnet.network_address, net.subnet.broadcast_address):
                    c.add(join(afld, "ip"), f"{addr} is not a usable address of {net_name}'s subnet {net.subnet}")
                elif net.gateway is not None and addr == net.gateway:
                    c.conflict(join(afld, "ip"), f"{addr} is {net_name}'s gateway")
                ip = str(addr)
        result.append(Attachment(network=net_name, ip=ip, aliases=parse_aliases(c, join(afld, "aliases"),
                                                                           raw.get("aliases"))))
    return result


def _default_bridge(c: Collector, fld: str, spec: object) -> list[Attachment]:
    """`bridge` beside user networks: the container joins Docker's default bridge too (`docker network connect
    bridge`, as Docker's tutorial does); it takes no static IP and no aliases there."""
    if spec in (None, {}):
        return [Attachment(network=DEFAULT_BRIDGE)]
    given = set(spec) if isinstance(spec, dict) else set()
    why = {"ip": "`ip` (Docker: 'user specified IP address is supported on user defined networks only')",
           "aliases": "`aliases` (Docker's DNS answers no names on the default bridge)"}
    what = " and no ".join(text for key, text in why.items() if key in given) or "settings (only an empty entry)"
    c.conflict(fld, f"the default bridge takes no {what}: leave its entry empty (`bridge: {{}}`), or use a "
               "user-defined network for that")
    return []


def parse_aliases(c: Collector, fld: str, value: object) -> tuple[str, ...]:
    """A network attachment's aliases: DNS labels; also for exercises."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(a, str) and ALIAS_RE.match(a) for a in value):
        c.wrong_type(fld, "must be a list of DNS labels (letters, digits, '-')")
        return ()
    return tuple(value)


@dataclass(frozen=True)
class PortMapping:
    host_ip: str | None      # None: every address of the host
    host_port: int | None    # None: Docker picks a free one
    container_port: int
    proto: str


def parse_port(text: str) -> PortMapping | str:
    """`[IP:][HOSTPORT:]PORT[/PROTO]` as Docker's --publish takes it, or why Docker would refuse it."""
    if not PORT_RE.match(text):
        return "not of the form [IP:][HOSTPORT:]PORT[/tcp|udp|sctp]"
    rest, _, proto = text.partition("/")
    parts = rest.split(":")
    ip = parts[0] if len(parts) == 3 else None
    if ip is not None and not _is_ip(ip):
        return f"{ip} is not an IPv4 address"
    numbers = [int(p) for p in parts[-2:] if p.isdigit()] if len(parts) > 1 else [int(parts[0])]
    bad = [n for n in numbers if not 1 <= n <= 65535]
    if bad:
        return f"port {bad[0]} is outside 1-65535"
    host_port = numbers[0] if len(numbers) == 2 else None
    return PortMapping(ip, host_port, numbers[-1], proto or "tcp")


def _ports(c: Collector, fld: str, value: object, mode: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(p, str | int) and not isinstance(p, bool) for p in value):
        c.wrong_type(fld, "must be a list such as ['8080:80', '53/udp', '127.0.0.1:8000:80']")
        return ()
    for i, p in enumerate(value):
        parsed = parse_port(str(p))
        if isinstance(parsed, str):
            c.add(f"{fld}[{i}]", f"{short(str(p))}: {parsed} (Docker would refuse it); e.g. '8080:80', '53/udp', "
                                 "'127.0.0.1:8000:80'")
    if any(isinstance(parse_port(str(p)), str) for p in value):
        return ()
    if mode in ("host", "none") or (isinstance(mode, str) and mode.startswith("container:")):
        c.conflict(fld, f"published ports have no effect with network_mode {short(mode)}; remove them")
    return tuple(str(p) for p in value)


def _check_published_ports(c: Collector, containers: list[Container]) -> None:
    """One host port (and protocol) per host address: a second container publishing it fails in `docker run` with
    'port is already allocated', after the first part of the lab changed."""
    taken: dict[tuple[str, int, str], list[tuple[str | None, str]]] = {}
    for x in containers:
        for p in x.ports:
            m = parse_port(p)
            if isinstance(m, str) or m.host_port is None:
                continue
            key = (x.host, m.host_port, m.proto)
            for ip, other in taken.get(key, []):
                if ip is None or m.host_ip is None or ip == m.host_ip or "0.0.0.0" in (ip, m.host_ip):
                    where = "" if other != x.name else " twice"
                    c.conflict(f"containers.{x.name}.ports", f"host port {m.host_port}/{m.proto} on {x.host} is also "
                                                        f"published by {short(other)}{where}: Docker would say 'port "
                                                        "is already allocated'; choose another host port")
                    break
            taken.setdefault(key, []).append((m.host_ip, x.name))


def _check_aliases(c: Collector, containers: list[Container]) -> None:
    """An alias equal to another container's name on the same network makes that name resolve to two containers."""
    members: dict[str, set[str]] = {}
    for x in containers:
        for a in x.networks:
            members.setdefault(a.network, set()).add(x.name)
    for x in containers:
        for a in x.networks:
            for alias in a.aliases:
                if alias != x.name and alias in members.get(a.network, set()):
                    c.conflict(f"containers.{x.name}.networks.{a.network}.aliases",
                          f"{short(alias)} is the name of another container on {a.network}: the name would resolve "
                          "to both; choose another alias")


def _check_container_refs(c: Collector, containers: list[Container]) -> None:
    by_name = {x.name: x for x in containers}
    for x in containers:
        if x.network_mode and x.network_mode.startswith("container:"):
            target = x.network_mode.split(":", 1)[1]
            other = by_name.get(target)
            fld = f"containers.{x.name}.network_mode"
            if other is None:
                c.add(fld, f"no container {short(target)} in this playbook")
            elif other.name == x.name:
                c.conflict(fld, "a container cannot share its own network stack")
            elif other.host != x.host:
                c.conflict(fld, f"{short(target)} runs on {other.host}, {short(x.name)} on {x.host}: a shared network "
                           "stack needs both on the same host")
            elif other.network_mode and other.network_mode.startswith("container:"):
                c.conflict(fld, f"{short(target)} itself shares another container's stack; point at that one instead")


def _check_static_ips(c: Collector, containers: list[Container], networks: dict[str, Network]) -> None:
    """A static IP is unique per network: per host for local drivers, everywhere for macvlan and overlay
    (macvlan containers on different hosts share one layer-2 segment)."""
    seen: dict[tuple[str, str, str], str] = {}
    for x in containers:
        for a in x.networks:
            net = networks.get(a.network)
            if a.ip is None or net is None:
                continue
            scope = x.host if net.driver == "bridge" else "*"
            key = (a.network, scope, a.ip)
            if key in seen:
                c.conflict(f"containers.{x.name}.networks.{a.network}.ip",
                           f"{a.ip} is also given to {short(seen[key])} on {a.network}")
            else:
                seen[key] = x.name


def _assign_macvlan_ranges(c: Collector, networks: list[Network], containers: list[Container],
                           control: str = "auto") -> list[Network]:
    """Docker's IPAM on each host knows nothing of the others: for a macvlan network on several hosts (and an
    overlay of the vxlan control plane, which Docker sees as macvlan), carve a disjoint ip_range per host out of the
    ip_range (or the upper half of the subnet), avoiding static IPs."""
    result = []
    for net in networks:
        per_host = net.driver == "macvlan" or (net.driver == "overlay" and control != "auto"
                                               and plane_traits(control).own_vnis)
        if not per_host or len(net.hosts) < 2:
            result.append(net)
            continue
        pool = net.ip_range or _upper_half(net.subnet)
        bits = math.ceil(math.log2(len(net.hosts)))
        if pool.prefixlen + bits > 30:
            c.add(f"networks.{net.name}.ip_range", f"{pool} is too small to split between {len(net.hosts)} hosts")
            result.append(net)
            continue
        parts = list(pool.subnets(prefixlen_diff=bits))
        ranges = tuple((h, str(parts[i])) for i, h in enumerate(net.hosts))
        for x in containers:
            for a in x.networks:
                if a.network != net.name or a.ip is None:
                    continue
                ip = ipaddress.ip_address(a.ip)
                for h, r in ranges:
                    if h != x.host and ip in ipaddress.ip_network(r):
                        c.conflict(f"containers.{x.name}.networks.{net.name}.ip",
                              f"{a.ip} lies in {h}'s dynamic range {r} of {net.name}: a container there could get "
                              f"it too; use an address outside {pool}")
        result.append(Network(**{**net.__dict__, "host_ranges": ranges}))
    return result


def derived_vni(lab: str, network: str) -> int:
    """A stable VXLAN ID for a network that names none: the same on every host and every run."""
    return VNI_FIRST + zlib.crc32(f"{lab}/{network}".encode()) % (VNI_LAST - VNI_FIRST)


def _vxlan_ids(c: Collector, networks: list[Network], lab: str) -> list[Network]:
    """`control: vxlan`: each overlay's VNI, from its vxlanid_list option (one ID) or derived; all distinct."""
    result: list[Network] = []
    seen: dict[int, str] = {}
    for net in networks:
        if net.driver != "overlay":
            result.append(net)
            continue
        given = dict(net.options).get(VXLANID_OPTION)
        if given is not None and (not given.isdigit() or not VNI_FIRST <= int(given) <= VNI_LAST):
            c.conflict(f"networks.{net.name}.options.{VXLANID_OPTION}",
                  f"{short(given)}: with control vxlan give one VXLAN ID from {VNI_FIRST} to {VNI_LAST}")
            given = None
        vni = int(given) if given is not None else derived_vni(lab, net.name)
        if vni in seen:
            c.conflict(f"networks.{net.name}", f"VXLAN ID {vni} is also {seen[vni]}'s: give one of them another "
                                          f"(options: {VXLANID_OPTION})")
        seen[vni] = net.name
        result.append(replace(net, vni=vni))
    return result


def _upper_half(subnet: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
    return list(subnet.subnets(prefixlen_diff=1))[1]
