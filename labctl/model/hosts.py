"""One host of an inventory: its roles, address, SSH settings and engine."""

from __future__ import annotations

from dataclasses import dataclass, field

from labctl import engines

BECOME_METHODS = ("sudo",)
HOST_KEY_POLICIES = ("strict", "accept-new")


@dataclass(frozen=True)
class SSHSettings:
    """How labctl logs in to a host. `origins` names, per field set in the inventory, where it was set
    ("ssh" or "hosts.NAME.ssh"): an ssh_config alias fills only the fields the inventory leaves unset."""

    user: str = "root"
    port: int = 22
    key: str | None = None
    known_hosts: str | None = None
    become: str | None = None          # "sudo": log in as `user`, run what needs root through sudo
    jump: str | None = None            # a bastion: an inventory host's name, or [user@]host[:port]
    config_host: str | None = None     # an alias in the user's ssh_config (HostName, Port, User, ... from there)
    config: str | None = None          # that ssh_config file (default ~/.ssh/config)
    host_keys: str = "strict"          # "accept-new": record the key of a host met for the first time
    origins: tuple[tuple[str, str], ...] = ()

    def origin(self, fld: str) -> str | None:
        return dict(self.origins).get(fld)


@dataclass(frozen=True)
class Host:
    name: str
    roles: tuple[str, ...]
    address: str | None  # underlay/SSH address; None for vagrant until resolved
    ssh: SSHSettings = field(default_factory=SSHSettings)
    engine: str = engines.SYSTEM   # where its Docker Engine comes from (labctl.engines); docker hosts only

    @property
    def is_docker(self) -> bool:
        return "docker" in self.roles

    @property
    def is_store(self) -> bool:
        return "store" in self.roles
