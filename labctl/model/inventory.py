"""Inventory: which hosts exist, how to reach them, and what each one is for."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field

from labctl import engines
from labctl.errors import Problem, ValidationError
from labctl.model.checks import (
    DNS_NAME_RE,
    HOST_NAME_RE,
    IFACE_RE,
    IMAGE_RE,
    LAB_NAME_RE,
    USER_RE,
    Collector,
    join,
    short,
)
from labctl.model.yamlsrc import parse_yaml, read_source

PROVIDERS = ("sandbox", "static", "vagrant")
ROLES = ("store", "docker")
DEFAULT_SANDBOX_SUBNET = "198.18.0.0/24"
DEFAULT_UNDERLAY_INTERFACE = "eth1"
DEFAULT_IMAGE = "labctl/busybox:latest"
FIRST_SANDBOX_HOST_OFFSET = 11  # store = .11, node1 = .12, ... like the tutorials' numbering

DEFAULT_VAGRANT_SUBNET = "192.168.56.0/24"   # the Vagrantfile's private network (LABCTL_SUBNET)
VAGRANT_STORE_OFFSET = 10                      # as the Vagrantfile numbers its VMs: store .10, nodeN .(10+N)

TOP_FIELDS = ("name", "provider", "underlay", "ssh", "image", "hosts", "vagrant", "packages", "engine")
# How hosts get packages when labctl provisions them: from their own apt sources (direct), or through the
# controller, over each host's SSH connection (controller: for VMs on isolated networks).
PACKAGE_SOURCES = ("direct", "controller")
HOST_FIELDS = ("roles", "address", "ssh", "engine")
SSH_FIELDS = ("user", "port", "key", "known_hosts")


@dataclass(frozen=True)
class SSHSettings:
    user: str = "root"
    port: int = 22
    key: str | None = None
    known_hosts: str | None = None


@dataclass(frozen=True)
class Host:
    name: str
    roles: tuple[str, ...]
    address: str | None  # underlay/SSH address; None for vagrant until resolved
    ssh: SSHSettings = field(default_factory=SSHSettings)
    engine: str = engines.SYSTEM   # where its Docker Engine comes from (labctl.engines); docker hosts only

    @property
    def is_docker(self) -> bool:
        return "docker" in self.roles

    @property
    def is_store(self) -> bool:
        return "store" in self.roles


@dataclass(frozen=True)
class Inventory:
    source: str
    name: str
    provider: str
    underlay_interface: str
    subnet: ipaddress.IPv4Network | None
    image: str
    hosts: tuple[Host, ...]
    vagrant_dir: str | None = None   # vagrant: the directory of the Vagrantfile (absolute)
    packages: str = "direct"         # one of PACKAGE_SOURCES

    def host(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    @property
    def docker_hosts(self) -> tuple[Host, ...]:
        return tuple(h for h in self.hosts if h.is_docker)

    @property
    def store_host(self) -> Host | None:
        return next((h for h in self.hosts if h.is_store), None)

    @property
    def controller_address(self) -> str | None:
        """Sandbox only: the controller's own address on the lab switch (first usable address)."""
        if self.subnet is None:
            return None
        return str(self.subnet.network_address + 1)


def load_inventory(path: str, other_sandbox_subnets: dict[str, str] | None = None) -> Inventory:
    return parse_inventory(read_source(path), path, other_sandbox_subnets)


def parse_inventory(text: str, source: str, other_sandbox_subnets: dict[str, str] | None = None) -> Inventory:
    """Parse and validate; raise ValidationError listing every problem.

    other_sandbox_subnets maps the names of sandbox labs that already exist on this machine to their
    subnets, so that a new lab cannot take an overlapping range (the caller gathers that fact).
    """
    data = parse_yaml(text, source)
    c = Collector(source)
    inv = _build(data, c, source, other_sandbox_subnets or {})
    if c.problems or inv is None:
        raise ValidationError(c.problems or [Problem(source, "(file)", "empty inventory")])
    return inv


def _default_name(source: str) -> str:
    stem = os.path.splitext(os.path.basename(source))[0].lower()
    return stem if LAB_NAME_RE.match(stem) else "lab"


def _build(data: object, c: Collector, source: str, others: dict[str, str]) -> Inventory | None:
    if not isinstance(data, dict):
        c.add("(file)", "must be a mapping with at least 'provider' and 'hosts'")
        return None
    top = c.mapping(data, "", TOP_FIELDS, required=("provider", "hosts"))
    name = c.string(top.get("name", _default_name(source)), "name", LAB_NAME_RE, "lab name")
    provider = c.choice(top.get("provider"), "provider", PROVIDERS) if "provider" in top else None
    underlay = c.mapping(top.get("underlay"), "underlay", ("interface", "subnet"))
    iface = c.string(underlay.get("interface", DEFAULT_UNDERLAY_INTERFACE), "underlay.interface", IFACE_RE,
                     "interface name")
    image = c.string(top.get("image", DEFAULT_IMAGE), "image", IMAGE_RE, "image reference")
    subnet = _subnet(c, provider, underlay, name, others)
    default_ssh = _ssh(c, top.get("ssh"), "ssh", SSHSettings())
    default_engine = _engine(c, top.get("engine", engines.SYSTEM), "engine")
    hosts = _hosts(c, top.get("hosts"), provider, subnet, default_ssh, default_engine or engines.SYSTEM)
    vagrant_dir = _vagrant_dir(c, top.get("vagrant"), provider, source)
    packages = c.choice(top.get("packages", "direct"), "packages", PACKAGE_SOURCES)
    if c.problems or provider is None:
        return None
    return Inventory(source=source, name=name or "lab", provider=provider, underlay_interface=iface or "eth1",
                     subnet=subnet, image=image or DEFAULT_IMAGE, hosts=tuple(hosts), vagrant_dir=vagrant_dir,
                     packages=packages or "direct")


def _vagrant_dir(c: Collector, value: object, provider: str | None, source: str) -> str | None:
    """vagrant.dir: where the Vagrantfile is, relative to the inventory file (default: its parent directory, as
    for inventories/vagrant.yaml and the Vagrantfile at the top of the repository)."""
    if provider != "vagrant":
        if value is not None:
            c.add("vagrant", f"only for provider 'vagrant' (this inventory's provider is {short(provider)}); remove it")
        return None
    raw = c.mapping(value, "vagrant", ("dir",))
    rel = raw.get("dir", "..")
    if not isinstance(rel, str) or not rel:
        c.add("vagrant.dir", "must be a directory path (relative to this file), e.g. '..'")
        return None
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(source)), os.path.expanduser(rel)))


def _subnet(c: Collector, provider: str | None, underlay: dict, name: str | None,
            others: dict[str, str]) -> ipaddress.IPv4Network | None:
    if provider == "vagrant":
        return c.ipv4_network(underlay.get("subnet", DEFAULT_VAGRANT_SUBNET), "underlay.subnet")
    if provider != "sandbox":
        if "subnet" in underlay:
            c.add("underlay.subnet", f"only for providers 'sandbox' and 'vagrant' (this inventory's provider is "
                                     f"{short(provider)}); remove it: the machines' own addresses are used")
        return None
    subnet = c.ipv4_network(underlay.get("subnet", DEFAULT_SANDBOX_SUBNET), "underlay.subnet")
    if subnet is None:
        return None
    if subnet.prefixlen > 28:
        c.add("underlay.subnet", f"{subnet} is too small for a lab; use a /28 or larger "
                                 f"(default {DEFAULT_SANDBOX_SUBNET})")
    if subnet.is_loopback or subnet.is_multicast or subnet.is_link_local or subnet.is_unspecified:
        c.add("underlay.subnet", f"{subnet} is a reserved range; use a private or benchmarking range such as "
                                 f"{DEFAULT_SANDBOX_SUBNET}")
    for other, other_subnet in sorted(others.items()):
        if other == name:
            continue
        try:
            overlaps = subnet.overlaps(ipaddress.ip_network(other_subnet))
        except ValueError:
            continue
        if overlaps:
            c.add("underlay.subnet", f"{subnet} overlaps sandbox lab {short(other)} ({other_subnet}) that exists on "
                                     "this "
                                     f"machine; choose another subnet or run `labctl sandbox down` for that lab")
    return subnet


def _ssh(c: Collector, value: object, fld: str, base: SSHSettings) -> SSHSettings:
    if value is None:
        return base
    raw = c.mapping(value, fld, SSH_FIELDS)
    user = c.string(raw["user"], join(fld, "user"), USER_RE, "user name") if "user" in raw else base.user
    port = c.integer(raw["port"], join(fld, "port"), 1, 65535) if "port" in raw else base.port
    key = c.string(raw["key"], join(fld, "key")) if "key" in raw else base.key
    known = c.string(raw["known_hosts"], join(fld, "known_hosts")) if "known_hosts" in raw else base.known_hosts
    return SSHSettings(user=user or base.user, port=port or base.port, key=key, known_hosts=known)


def _engine(c: Collector, value: object, fld: str) -> str | None:
    names = engines.names()
    if value not in names:
        c.add(fld, f"unknown engine {short(value)}; allowed: {', '.join(names)} (see `labctl engines`)")
        return None
    return str(value)


def _hosts(c: Collector, value: object, provider: str | None, subnet: ipaddress.IPv4Network | None,
           default_ssh: SSHSettings, default_engine: str) -> list[Host]:
    if not isinstance(value, dict) or not value:
        c.add("hosts", "must be a non-empty mapping of host name -> {roles: [...]}")
        return []
    hosts: list[Host] = []
    for name, spec in value.items():
        fld = f"hosts.{name}"
        if not isinstance(name, str) or not HOST_NAME_RE.match(name):
            c.add(fld, f"{short(name)} is not a valid host name; use lowercase letters, digits and '-', "
                       "starting with a letter (it becomes the hostname)")
            continue
        raw = c.mapping(spec, fld, HOST_FIELDS, required=("roles",))
        roles = _roles(c, raw.get("roles"), join(fld, "roles")) if "roles" in raw else ()
        address = _address(c, raw.get("address"), join(fld, "address"), provider, subnet)
        if provider in ("sandbox", "vagrant") and "ssh" in raw:
            c.add(join(fld, "ssh"), f"not used by provider {short(provider)}: labctl makes (sandbox) or reads "
                                    "(vagrant) "
                                    "the SSH settings; remove it")
        ssh = _ssh(c, raw.get("ssh"), join(fld, "ssh"), default_ssh)
        if provider == "vagrant" and address is None and subnet is not None:
            address = _vagrant_address(c, name, fld, subnet)
        engine = default_engine
        if "engine" in raw:
            engine = _engine(c, raw["engine"], join(fld, "engine")) or default_engine
            if roles and "docker" not in roles:
                c.add(join(fld, "engine"), "only docker hosts run a Docker Engine; remove it, or add role 'docker'")
        hosts.append(Host(name=name, roles=roles, address=address, ssh=ssh,
                          engine=engine if "docker" in roles else engines.SYSTEM))
    _check_host_set(c, hosts, provider, subnet)
    return hosts


def _vagrant_address(c: Collector, name: str, fld: str, subnet: ipaddress.IPv4Network) -> str | None:
    """The private-network address the Vagrantfile gives a VM of this name: store .10, nodeN .(10+N)."""
    if name == "store":
        offset = VAGRANT_STORE_OFFSET
    elif name.startswith("node") and name[4:].isdigit() and int(name[4:]) > 0:
        offset = VAGRANT_STORE_OFFSET + int(name[4:])
    else:
        c.add(join(fld, "address"), f"needed for {short(name)}: the Vagrantfile names its VMs 'store' and 'node1'.."
                                    "'nodeN' and numbers only those; give the VM's private-network address")
        return None
    if offset >= subnet.num_addresses - 1:
        c.add(join(fld, "address"), f"{short(name)} would be offset {offset} of underlay.subnet {subnet}, outside it")
        return None
    return str(subnet.network_address + offset)


def _roles(c: Collector, value: object, fld: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        c.add(fld, f"must be a non-empty list of roles; allowed: {', '.join(ROLES)}")
        return ()
    roles = []
    for i, role in enumerate(value):
        if role not in ROLES:
            c.add(f"{fld}[{i}]", f"unknown role {short(role)}; allowed: {', '.join(ROLES)}")
        elif role not in roles:
            roles.append(role)
    return tuple(roles)


def _address(c: Collector, value: object, fld: str, provider: str | None,
             subnet: ipaddress.IPv4Network | None) -> str | None:
    if value is None:
        if provider == "static":
            c.add(fld, "is required for provider 'static' (the host's IP address or DNS name for SSH)")
        return None
    if provider == "static":
        return c.string(value, fld, DNS_NAME_RE, "IP address or DNS name")
    addr = c.ipv4_address(value, fld)
    if addr is None or subnet is None:
        return None
    if addr not in subnet or addr in (subnet.network_address, subnet.broadcast_address):
        c.add(fld, f"{addr} is not a usable address of underlay.subnet {subnet}")
        return None
    if provider == "sandbox" and addr == subnet.network_address + 1:
        c.add(fld, f"{addr} is the controller's address on the lab switch; use another one")
        return None
    return str(addr)


def _check_host_set(c: Collector, hosts: list[Host], provider: str | None,
                    subnet: ipaddress.IPv4Network | None) -> None:
    if hosts and not any(h.is_docker for h in hosts):
        c.add("hosts", "no host has role 'docker'; a lab needs at least one Docker host")
    stores = [h.name for h in hosts if h.is_store]
    if len(stores) > 1:
        c.add("hosts", f"role 'store' is on {len(stores)} hosts ({', '.join(stores)}); give it to exactly one host")
    seen: dict[str, str] = {}
    for h in hosts:
        if h.address is None:
            continue
        key = f"{h.address}:{h.ssh.port}" if provider == "static" else h.address
        if key in seen:
            c.add(f"hosts.{h.name}.address", f"{h.address} is also the address of host {short(seen[key])}")
        else:
            seen[key] = h.name
    if provider == "sandbox" and subnet is not None:
        capacity = subnet.num_addresses - FIRST_SANDBOX_HOST_OFFSET - 1
        if len(hosts) > capacity:
            c.add("hosts", f"{len(hosts)} hosts do not fit in underlay.subnet {subnet}; use a larger subnet")


def sandbox_addresses(inv: Inventory) -> dict[str, str]:
    """Addresses of sandbox hosts: explicit ones kept, the rest numbered from .11 in inventory order."""
    assert inv.subnet is not None
    taken = {h.address for h in inv.hosts if h.address}
    result: dict[str, str] = {}
    candidate = inv.subnet.network_address + FIRST_SANDBOX_HOST_OFFSET
    for h in inv.hosts:
        if h.address:
            result[h.name] = h.address
            continue
        while str(candidate) in taken:
            candidate += 1
        result[h.name] = str(candidate)
        taken.add(str(candidate))
        candidate += 1
    return result
