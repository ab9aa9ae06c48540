"""Endpoints for any inventory, whatever its provider."""

from __future__ import annotations

from labctl.errors import LabctlError
from labctl.model.inventory import Inventory
from labctl.providers import sandbox, static, vagrant
from labctl.providers.base import Endpoint
from labctl.ui import Progress


def store_binary(inv: Inventory, backend: str, progress: Progress | None) -> str | None:
    """Where the store's server is on the store host when the provider supplies it; None: where the distribution's
    package puts it (VMs and static hosts get it from `labctl provision`). progress: fetch it if it is missing."""
    if inv.provider == "sandbox":
        return sandbox.store_binary(backend, progress)
    return None


def endpoints(inv: Inventory) -> list[Endpoint]:
    if inv.provider == "sandbox":
        return sandbox.endpoints(inv)
    if inv.provider == "static":
        return static.endpoints(inv)
    if inv.provider == "vagrant":
        return vagrant.endpoints(inv)
    raise LabctlError(f"unknown provider {inv.provider!r}")
