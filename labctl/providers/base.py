"""What every provider hands to the executors: one SSH endpoint per host, and the Provider interface."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from labctl.executors.services import ByHostInit, Service, ServiceManager

if TYPE_CHECKING:
    from labctl.model.inventory import Inventory
    from labctl.ui import Progress


@dataclass(frozen=True)
class Endpoint:
    name: str
    address: str
    port: int
    user: str
    key_file: str | None
    known_hosts: str | None
    roles: tuple[str, ...]
    strict_host_keys: bool = True

    def as_dict(self) -> dict:
        d = asdict(self)
        d["roles"] = list(self.roles)
        return d


class Provider:
    """How a provider's hosts are reached and run (its executor half; its inventory rules are in
    labctl.model.providers). Defaults fit machines that exist already."""

    name = ""
    provisions_by_default = True     # `up` installs Docker and the store first (VMs, machines); sandbox hosts
                                     # share the controller's packages

    def endpoints(self, inv: Inventory) -> list[Endpoint]:
        raise NotImplementedError

    def store_binary(self, backend: str, progress: Progress | None) -> str | None:
        """Where the store's server is on the store host when the provider supplies it; None: where the
        distribution's package puts it (`labctl provision` installs it)."""
        return None

    def host_engine(self, inv: Inventory, host: str) -> Any:
        """The engine the provider runs on a docker host from the controller's cache (enginecache.Unpacked), or
        None: the host's own, installed by `labctl provision` from the inventory's `engine:`."""
        return None

    def service_manager(self) -> ServiceManager:
        """Chosen per host from its init (see executors.services), whatever the provider."""
        return ByHostInit()

    def dockerd_service(self, inv: Inventory, host: str) -> Service:
        """dockerd on a docker host, as the service manager knows it."""
        return Service("docker")
