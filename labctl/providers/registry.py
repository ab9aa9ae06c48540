"""Endpoints for any inventory, whatever its provider."""

from __future__ import annotations

from labctl.errors import LabctlError
from labctl.model.inventory import Inventory
from labctl.providers import sandbox, static, vagrant
from labctl.providers.base import Endpoint


def endpoints(inv: Inventory) -> list[Endpoint]:
    if inv.provider == "sandbox":
        return sandbox.endpoints(inv)
    if inv.provider == "static":
        return static.endpoints(inv)
    if inv.provider == "vagrant":
        return vagrant.endpoints(inv)
    raise LabctlError(f"unknown provider {inv.provider!r}")
