"""Static provider: machines that already exist, reached with the SSH settings the inventory gives."""

from __future__ import annotations

from labctl.model.inventory import Inventory
from labctl.providers.base import Endpoint, Provider


def endpoints(inv: Inventory) -> list[Endpoint]:
    return [Endpoint(name=h.name, address=h.address or h.name, port=h.ssh.port, user=h.ssh.user,
                     key_file=h.ssh.key, known_hosts=h.ssh.known_hosts, roles=h.roles) for h in inv.hosts]


class StaticProvider(Provider):
    name = "static"

    def endpoints(self, inv: Inventory) -> list[Endpoint]:
        return endpoints(inv)


PROVIDER = StaticProvider()
