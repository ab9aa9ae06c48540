"""What every provider hands to the executors: one SSH endpoint per host."""

from __future__ import annotations

from dataclasses import asdict, dataclass


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
