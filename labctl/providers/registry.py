"""Endpoints for any inventory, whatever its provider."""

from __future__ import annotations

from labctl.errors import LabctlError
from labctl.model.inventory import Inventory
from labctl.providers import sandbox, static
from labctl.providers.base import Endpoint


def endpoints(inv: Inventory) -> list[Endpoint]:
    if inv.provider == "sandbox":
        return sandbox.endpoints(inv)
    if inv.provider == "static":
        return static.endpoints(inv)
    raise LabctlError(
        "provider 'vagrant' cannot resolve endpoints yet: `vagrant ssh-config` parsing is not implemented",
        hint="use a static inventory with the VMs' private-network addresses meanwhile")
