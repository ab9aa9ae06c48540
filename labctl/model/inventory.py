"""Inventory: which hosts exist, how to reach them, and what each one is for."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from labctl import engines
from labctl.errors import Problem, ValidationError
from labctl.model import providers
from labctl.model.checks import (
    HOST_NAME_RE,
    IFACE_RE,
    IMAGE_RE,
    LAB_NAME_RE,
    USER_RE,
    Collector,
    join,
    short,
)
from labctl.model.hosts import BECOME_METHODS, HOST_KEY_POLICIES, Host, SSHSettings
from labctl.model.providers import ProviderRules
from labctl.model.providers import sandbox as sandbox_rules
from labctl.model.providers.sandbox import SandboxAccess
from labctl.model.yamlsrc import parse_yaml, read_source

ROLES = ("store", "docker")
DEFAULT_SANDBOX_SUBNET = sandbox_rules.DEFAULT_SUBNET
DEFAULT_UNDERLAY_INTERFACE = "eth1"
DEFAULT_IMAGE = "labctl/busybox:latest"
FIRST_SANDBOX_HOST_OFFSET = sandbox_rules.FIRST_HOST_OFFSET

COMMON_FIELDS = ("name", "provider", "underlay", "ssh", "image", "hosts", "packages", "engine")


def top_fields() -> tuple[str, ...]:
    """The common fields and every provider's own (read when parsing: a provider registered later counts)."""
    return COMMON_FIELDS[:6] + tuple(f for r in providers.RULES.values() for f in r.own_fields) + COMMON_FIELDS[6:]
# How hosts get packages when labctl provisions them: from their own apt sources (direct), or through the
# controller, over each host's SSH connection (controller: for VMs on isolated networks).
PACKAGE_SOURCES = ("direct", "controller")
HOST_FIELDS = ("roles", "address", "ssh", "engine")
SSH_FIELDS = ("user", "port", "key", "known_hosts", "become", "jump", "config_host", "config", "host_keys")
JUMP_RE = re.compile(r"^(?:[a-z_][a-z0-9_-]{0,31}@)?[A-Za-z0-9][A-Za-z0-9.-]{0,252}(?::[0-9]{1,5})?$")
CONFIG_HOST_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}$")
UNDERLAY_FIELDS = ("interface", "subnet")


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
    sandbox_access: SandboxAccess | None = None   # sandbox: a login user, a bastion
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
        raise ValidationError(c.problems or [Problem(source, "(file)", "empty inventory", "missing")])
    return inv


def _default_name(source: str) -> str:
    stem = os.path.splitext(os.path.basename(source))[0].lower()
    return stem if LAB_NAME_RE.match(stem) else "lab"


def _build(data: object, c: Collector, source: str, others: dict[str, str]) -> Inventory | None:
    if not isinstance(data, dict):
        c.wrong_type("(file)", "must be a mapping with at least 'provider' and 'hosts'")
        return None
    top = c.mapping(data, "", top_fields(), required=("provider", "hosts"))
    name = c.string(top.get("name", _default_name(source)), "name", LAB_NAME_RE, "lab name")
    provider = c.choice(top.get("provider"), "provider", tuple(providers.RULES)) if "provider" in top else None
    rules = providers.RULES.get(provider) if provider else None
    underlay = c.mapping(top.get("underlay"), "underlay", UNDERLAY_FIELDS)
    iface = c.string(underlay.get("interface", DEFAULT_UNDERLAY_INTERFACE), "underlay.interface", IFACE_RE,
                     "interface name")
    image = c.string(top.get("image", DEFAULT_IMAGE), "image", IMAGE_RE, "image reference")
    subnet = rules.subnet(c, underlay, name, others) if rules else None
    default_ssh = _ssh(c, top.get("ssh"), "ssh", SSHSettings())
    default_engine = _engine(c, top.get("engine", engines.SYSTEM), "engine")
    hosts = [] if "hosts" not in top else _hosts(c, top["hosts"], rules, subnet, default_ssh,
                                                 default_engine or engines.SYSTEM)
    own = _own_fields(c, top, rules, source)
    if rules is not None:
        rules.check_own(c, own, hosts)
    vagrant_dir = own.get("vagrant")
    access = own.get("sandbox")
    packages = c.choice(top.get("packages", "direct"), "packages", PACKAGE_SOURCES)
    if c.problems or provider is None:
        return None
    return Inventory(source=source, name=name or "lab", provider=provider, underlay_interface=iface or "eth1",
                     subnet=subnet, image=image or DEFAULT_IMAGE, hosts=tuple(hosts),
                     vagrant_dir=str(vagrant_dir) if vagrant_dir else None,
                     sandbox_access=access if isinstance(access, SandboxAccess) else None,
                     packages=packages or "direct")


def _own_fields(c: Collector, top: dict[str, object], rules: ProviderRules | None,
                source: str) -> dict[str, object]:
    """Top-level fields that belong to one provider: parsed by it, refused for the others."""
    result: dict[str, object] = {}
    for owner in providers.RULES.values():
        for fld in owner.own_fields:
            if fld not in top:
                continue
            if rules is owner:
                result[fld] = owner.parse_own(c, fld, top[fld], source)
            elif rules is not None:
                c.conflict(fld, f"only for provider {short(owner.name)} (this inventory's provider is "
                           f"{short(rules.name)}); remove it")
    if rules is not None:
        for fld in rules.own_fields:
            if fld not in result:
                result[fld] = rules.parse_own(c, fld, {}, source)
    return result


def _ssh(c: Collector, value: object, fld: str, base: SSHSettings) -> SSHSettings:
    if value is None:
        return base
    raw = c.mapping(value, fld, SSH_FIELDS)
    got: dict[str, object] = {}
    checks: dict[str, Callable[[object, str], object]] = {
        "user": lambda v, f: c.string(v, f, USER_RE, "user name"),
        "port": lambda v, f: c.integer(v, f, 1, 65535),
        "key": lambda v, f: c.string(v, f),
        "known_hosts": lambda v, f: c.string(v, f),
        "become": lambda v, f: c.choice(v, f, BECOME_METHODS),
        "jump": lambda v, f: c.string(v, f, JUMP_RE, "jump host ([user@]host[:port] or an inventory host)"),
        "config_host": lambda v, f: c.string(v, f, CONFIG_HOST_RE, "ssh_config host alias"),
        "config": lambda v, f: c.string(v, f),
        "host_keys": lambda v, f: c.choice(v, f, HOST_KEY_POLICIES),
    }
    for name, check in checks.items():
        if name in raw:
            parsed = check(raw[name], join(fld, name))
            if parsed is not None:
                got[name] = parsed
    if fld == "ssh" and "config_host" in raw:
        c.conflict("ssh.config_host", "one alias names one machine; give it per host, under hosts.NAME.ssh")
    origins = dict(base.origins)
    origins.update({name: fld for name in got})
    return replace(base, **got, origins=tuple(sorted(origins.items())))  # type: ignore[arg-type]


def _engine(c: Collector, value: object, fld: str) -> str | None:
    names = engines.names()
    if value not in names:
        c.add(fld, f"unknown engine {short(value)}; allowed: {', '.join(names)} (see `labctl engines`)")
        return None
    return str(value)


def _hosts(c: Collector, value: object, rules: ProviderRules | None, subnet: ipaddress.IPv4Network | None,
           default_ssh: SSHSettings, default_engine: str) -> list[Host]:
    if not isinstance(value, dict) or not value:
        c.wrong_type("hosts", "must be a non-empty mapping of host name -> {roles: [...]}")
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
        if rules is not None and not rules.host_ssh and "ssh" in raw:
            c.conflict(join(fld, "ssh"), f"not used by provider {short(rules.name)}: {rules.summary} the SSH settings; "
                                    "remove it")
        ssh = _ssh(c, raw.get("ssh"), join(fld, "ssh"), default_ssh)
        address = None
        if rules is not None and not (raw.get("address") is None and ssh.config_host):  # the alias's HostName
            address = rules.address(c, raw.get("address"), join(fld, "address"), subnet)
        if rules is not None and address is None:
            address = rules.default_address(c, name, fld, subnet)
        engine = default_engine
        if "engine" in raw:
            engine = _engine(c, raw["engine"], join(fld, "engine")) or default_engine
            if roles and "docker" not in roles:
                c.conflict(join(fld, "engine"), "only docker hosts run a Docker Engine; remove it, or add role "
                                                "'docker'")
        hosts.append(Host(name=name, roles=roles, address=address, ssh=ssh,
                          engine=engine if "docker" in roles else engines.SYSTEM))
    _check_host_set(c, hosts, rules, subnet)
    return hosts


def _roles(c: Collector, value: object, fld: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        c.wrong_type(fld, f"must be a non-empty list of roles; allowed: {', '.join(ROLES)}")
        return ()
    roles = []
    for i, role in enumerate(value):
        if role not in ROLES:
            c.add(f"{fld}[{i}]", f"unknown role {short(role)}; allowed: {', '.join(ROLES)}")
        elif role not in roles:
            roles.append(role)
    return tuple(roles)


def _check_host_set(c: Collector, hosts: list[Host], rules: ProviderRules | None,
                    subnet: ipaddress.IPv4Network | None) -> None:
    if hosts and not any(h.is_docker for h in hosts):
        c.missing("hosts", "no host has role 'docker'; a lab needs at least one Docker host")
    stores = [h.name for h in hosts if h.is_store]
    if len(stores) > 1:
        c.conflict("hosts", f"role 'store' is on {len(stores)} hosts ({', '.join(stores)}); give it to exactly one "
                   "host")
    seen: dict[str, str] = {}
    for h in hosts:
        if h.address is None:
            continue
        key = rules.address_key(h) if rules else h.address
        if key in seen:
            c.conflict(f"hosts.{h.name}.address", f"{h.address} is also the address of host {short(seen[key])}")
        else:
            seen[key] = h.name
    _check_jumps(c, hosts)
    if rules is not None:
        rules.check_hosts(c, hosts, subnet)


def _check_jumps(c: Collector, hosts: list[Host]) -> None:
    """A bastion that is an inventory host is reached directly: labctl follows one bastion, no chains. (The
    bastion's own `jump:`, inherited from the inventory's `ssh:`, naming itself means: reach it directly.)"""
    by_name = {h.name: h for h in hosts}
    for h in hosts:
        jump = by_name.get(h.ssh.jump or "")
        if jump is None or jump.name == h.name or jump.ssh.jump in (None, jump.name):
            continue
        c.conflict(f"hosts.{h.name}.ssh.jump", f"jump host {jump.name} is itself reached through {jump.ssh.jump}; "
                   f"labctl follows one bastion: give {jump.name} no `jump:` of its own")


def host_addresses(inv: Inventory) -> dict[str, str | None]:
    """Each host's underlay address as the inventory's provider numbers them (None: known only once reached)."""
    return providers.RULES[inv.provider].addresses(inv.hosts, inv.subnet)


def sandbox_addresses(inv: Inventory) -> dict[str, str]:
    """Addresses of sandbox hosts: explicit ones kept, the rest numbered from .11 in inventory order."""
    return {name: addr or "" for name, addr in host_addresses(inv).items()}
