"""The providers by name (the executor halves; their inventory rules are in labctl.model.providers): the only
list of them on this side. A new provider is one module with a Provider and one line here."""

from __future__ import annotations

from typing import Any

from labctl.executors.services import ServiceManager
from labctl.model.inventory import Inventory
from labctl.providers import sandbox, static, vagrant
from labctl.providers.base import Endpoint, Provider
from labctl.ui import Progress

PROVIDERS: dict[str, Provider] = {p.name: p for p in (sandbox.PROVIDER, static.PROVIDER, vagrant.PROVIDER)}


def provider(inv: Inventory) -> Provider:
    return PROVIDERS[inv.provider]    # the inventory's provider was validated against the same names


def endpoints(inv: Inventory) -> list[Endpoint]:
    return provider(inv).endpoints(inv)


def store_binary(inv: Inventory, backend: str, progress: Progress | None) -> str | None:
    """Where the store's server is on the store host when the provider supplies it (progress: fetch it if it is
    missing); None: where the distribution's package puts it."""
    return provider(inv).store_binary(backend, progress)


def host_engine(inv: Inventory, host: str) -> Any:
    """The engine a docker host runs from the controller's cache, or None: its own."""
    return provider(inv).host_engine(inv, host)


def service_manager(inv: Inventory) -> ServiceManager:
    return provider(inv).service_manager()
