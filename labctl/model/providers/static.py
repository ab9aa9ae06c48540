"""Static hosts: any machines reachable over SSH, at the addresses the inventory gives."""

from __future__ import annotations

import ipaddress

from labctl.model.checks import DNS_NAME_RE, Collector
from labctl.model.hosts import Host
from labctl.model.providers.base import ProviderRules


class Static(ProviderRules):
    name = "static"
    summary = "the inventory gives"

    def address(self, c: Collector, value: object, fld: str,
                subnet: ipaddress.IPv4Network | None) -> str | None:
        if value is None:
            c.missing(fld, "is required for provider 'static' (the host's IP address or DNS name for SSH)")
            return None
        return c.string(value, fld, DNS_NAME_RE, "IP address or DNS name")

    def address_key(self, host: Host) -> str:
        return f"{host.address}:{host.ssh.port}"     # one address, several forwarded SSH ports: several machines
