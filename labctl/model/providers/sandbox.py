"""Sandbox hosts: namespaces on this machine, numbered on a lab switch; labctl makes their SSH settings."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from labctl.model.checks import HOST_NAME_RE, USER_RE, Collector, join, short
from labctl.model.hosts import Host
from labctl.model.providers.base import ProviderRules

DEFAULT_SUBNET = "198.18.0.0/24"
FIRST_HOST_OFFSET = 11  # store = .11, node1 = .12, ... like the tutorials' numbering


SUDO_MODES = ("passwordless", "password", "none")
ACCESS_FIELDS = ("login_user", "sudo", "bastion")


@dataclass(frozen=True)
class SandboxAccess:
    """How else the sandbox hosts can be reached, to rehearse real machines: a login user besides root (with
    sudo without a password, with one, or none), and docker hosts that answer SSH only through a bastion."""

    login_user: str | None = None
    sudo: str = "passwordless"
    bastion: str | None = None


class Sandbox(ProviderRules):
    name = "sandbox"
    subnet_default = DEFAULT_SUBNET
    host_ssh = False
    summary = "labctl makes"
    own_fields = ("sandbox",)
    own_schema = {"sandbox": {
        "type": "object", "additionalProperties": False,
        "description": "rehearse real machines: a login user with sudo, docker hosts behind a bastion",
        "properties": {"login_user": {"type": "string", "pattern": USER_RE.pattern},
                       "sudo": {"enum": list(SUDO_MODES)},
                       "bastion": {"type": "string", "pattern": HOST_NAME_RE.pattern}}}}

    def parse_own(self, c: Collector, field: str, value: object, source: str) -> object:
        """sandbox.login_user (a user with a home and the lab's key), sandbox.sudo (what that user may do),
        sandbox.bastion (the host through which alone the others answer SSH)."""
        raw = c.mapping(value, "sandbox", ACCESS_FIELDS)
        if not raw:
            return None
        user = c.string(raw["login_user"], "sandbox.login_user", USER_RE, "user name") if "login_user" in raw \
            else None
        if user == "root":
            c.add("sandbox.login_user", "root logs in already; name another user (for example 'student')")
        sudo = c.choice(raw.get("sudo", "passwordless"), "sandbox.sudo", SUDO_MODES)
        if "sudo" in raw and "login_user" not in raw:
            c.missing("sandbox.login_user", "sandbox.sudo is for a login user; name one (for example 'student')")
        bastion = c.string(raw["bastion"], join("sandbox", "bastion"), HOST_NAME_RE, "host name") \
            if "bastion" in raw else None
        return SandboxAccess(login_user=user, sudo=sudo or "passwordless", bastion=bastion)

    def check_own(self, c: Collector, own: dict[str, object], hosts: list[Host]) -> None:
        access = own.get("sandbox")
        if isinstance(access, SandboxAccess) and access.bastion and access.bastion not in {h.name for h in hosts}:
            c.add("sandbox.bastion", f"no host {short(access.bastion)}; name one of the inventory's hosts "
                                     "(the store host, say)")

    def subnet(self, c: Collector, underlay: dict[str, object], lab: str | None,
               others: dict[str, str]) -> ipaddress.IPv4Network | None:
        subnet = super().subnet(c, underlay, lab, others)
        if subnet is None:
            return None
        if subnet.prefixlen > 28:
            c.add("underlay.subnet", f"{subnet} is too small for a lab; use a /28 or larger (default {DEFAULT_SUBNET})")
        if subnet.is_loopback or subnet.is_multicast or subnet.is_link_local or subnet.is_unspecified:
            c.add("underlay.subnet", f"{subnet} is a reserved range; use a private or benchmarking range such as "
                                     f"{DEFAULT_SUBNET}")
        for other, other_subnet in sorted(others.items()):
            if other == lab:
                continue
            try:
                overlaps = subnet.overlaps(ipaddress.ip_network(other_subnet))
            except ValueError:
                continue
            if overlaps:
                c.conflict("underlay.subnet", f"{subnet} overlaps sandbox lab {short(other)} ({other_subnet}) "
                                              "that exists on this machine; choose another subnet or run "
                                              "`labctl sandbox down` for that lab")
        return subnet

    def address(self, c: Collector, value: object, fld: str,
                subnet: ipaddress.IPv4Network | None) -> str | None:
        addr = super().address(c, value, fld, subnet)
        if addr is not None and subnet is not None and ipaddress.ip_address(addr) == subnet.network_address + 1:
            c.conflict(fld, f"{addr} is the controller's address on the lab switch; use another one")
            return None
        return addr

    def addresses(self, hosts: tuple[Host, ...], subnet: ipaddress.IPv4Network | None) -> dict[str, str | None]:
        """Explicit addresses kept, the rest numbered from .11 in inventory order."""
        assert subnet is not None
        taken = {h.address for h in hosts if h.address}
        result: dict[str, str | None] = {}
        candidate = subnet.network_address + FIRST_HOST_OFFSET
        for h in hosts:
            if h.address:
                result[h.name] = h.address
                continue
            while str(candidate) in taken:
                candidate += 1
            result[h.name] = str(candidate)
            taken.add(str(candidate))
            candidate += 1
        return result

    def check_hosts(self, c: Collector, hosts: list[Host], subnet: ipaddress.IPv4Network | None) -> None:
        if subnet is not None and len(hosts) > subnet.num_addresses - FIRST_HOST_OFFSET - 1:
            c.conflict("hosts", f"{len(hosts)} hosts do not fit in underlay.subnet {subnet}; use a larger subnet")
