"""What an inventory's provider decides about its own fields (pure): the underlay subnet, host addresses, whether
hosts may carry SSH settings, fields only it has. One subclass per provider; model.inventory asks the provider's
rules instead of branching on its name."""

from __future__ import annotations

import ipaddress

from labctl.model.checks import Collector, short
from labctl.model.hosts import Host


class ProviderRules:
    name = ""
    subnet_default: str | None = None     # None: the provider takes no underlay.subnet (the machines' own addresses)
    host_ssh: bool = True                 # hosts may carry `ssh:` (static); sandbox makes, vagrant reads its own
    own_fields: tuple[str, ...] = ()      # top-level fields only this provider has ("vagrant")
    own_schema: dict[str, dict] = {}      # their JSON Schemas (labctl.model.schema), one per own field
    summary = ""                          # for messages: what makes the hosts
    macvlan_hint = ""                     # verify's cause when macvlan frames between hosts are lost, if known

    def subnet(self, c: Collector, underlay: dict[str, object], lab: str | None,
               others: dict[str, str]) -> ipaddress.IPv4Network | None:
        if self.subnet_default is None:
            if "subnet" in underlay:
                c.conflict("underlay.subnet", f"not used by provider {short(self.name)}: the machines' own "
                                              "addresses are used; remove it")
            return None
        return c.ipv4_network(underlay.get("subnet", self.subnet_default), "underlay.subnet")

    def address(self, c: Collector, value: object, fld: str,
                subnet: ipaddress.IPv4Network | None) -> str | None:
        """A host's `address:` (None: not given)."""
        if value is None:
            return None
        addr = c.ipv4_address(value, fld)
        if addr is None or subnet is None:
            return None
        if addr not in subnet or addr in (subnet.network_address, subnet.broadcast_address):
            c.add(fld, f"{addr} is not a usable address of underlay.subnet {subnet}")
            return None
        return str(addr)

    def default_address(self, c: Collector, host: str, fld: str,
                        subnet: ipaddress.IPv4Network | None) -> str | None:
        """The address of a host that gives none, where the provider knows it now (else None)."""
        return None

    def address_key(self, host: Host) -> str:
        """What must differ between two hosts (two hosts at one address are one machine)."""
        return host.address or ""

    def check_hosts(self, c: Collector, hosts: list[Host], subnet: ipaddress.IPv4Network | None) -> None:
        """Rules over the whole host set beyond the common ones."""

    def addresses(self, hosts: tuple[Host, ...], subnet: ipaddress.IPv4Network | None) -> dict[str, str | None]:
        """Each host's underlay address, as far as the inventory says (vagrant: as the Vagrantfile numbers them)."""
        return {h.name: h.address for h in hosts}

    def parse_own(self, c: Collector, field: str, value: object, source: str) -> object:
        """One of own_fields; what the Inventory keeps of it."""
        return None

    def check_own(self, c: Collector, own: dict[str, object], hosts: list[Host]) -> None:
        """Rules between the provider's own fields and the hosts."""
