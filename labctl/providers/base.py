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
    strict_host_keys: bool = True    # False: Vagrant's way (any key, nothing recorded)
    host_keys: str = "strict"        # "accept-new": record the key of a host met for the first time
    become: str | None = None        # "sudo": what needs root runs through sudo as `user`
    jump: Endpoint | None = None     # the bastion this host is reached through
    origins: tuple[tuple[str, str], ...] = ()   # field -> where its value came from (`labctl hosts`)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["roles"] = list(self.roles)
        d["jump"] = self.jump.as_dict() if self.jump else None
        d["origins"] = dict(self.origins)
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
        """dockerd on a docker host, as the service manager knows it: docker.service, or dockerd with its defaults
        where the host has no systemd (supervised under the same name as a sandbox host's dockerd, so that a
        sandbox host reached as any machine keeps one daemon)."""
        return Service("dockerd", unit="docker.service", supervised_argv=("/usr/sbin/dockerd",))
