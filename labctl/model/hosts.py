"""One host of an inventory: its roles, address, SSH settings and engine."""

from __future__ import annotations

from dataclasses import dataclass, field

from labctl import engines


@dataclass(frozen=True)
class SSHSettings:
    user: str = "root"
    port: int = 22
    key: str | None = None
    known_hosts: str | None = None


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
