"""Where a docker host's Docker Engine comes from (the inventory's `engine:` field): one module per kind of source.

A source is pure description: which packages make the engine, from which Debian release, and which tools of the
store it can also supply. Fetching and unpacking (side effects) live in labctl.executors.enginecache; a provider
decides how a host then runs what was fetched (sandbox hosts run it from the controller's cache, VMs and static
hosts get it installed through apt by `labctl provision`).

A new kind of source is one module that calls `register` (labctl.engines.base) and one import line here.
"""

from __future__ import annotations

from labctl.engines import debian, system  # noqa: F401  (imported for their register() calls: the list of sources)
from labctl.engines.base import _SOURCES, SYSTEM, EngineSource, register

__all__ = ["SYSTEM", "EngineSource", "register", "names", "get", "all_sources", "store_tool_source"]


def names() -> tuple[str, ...]:
    return tuple(_SOURCES)


def get(name: str) -> EngineSource:
    return _SOURCES[name]


def all_sources() -> list[EngineSource]:
    return list(_SOURCES.values())


def store_tool_source(backend: str) -> EngineSource | None:
    """The source that supplies this store backend's server where a host has none (Consul: Debian 11)."""
    return next((s for s in _SOURCES.values() if backend in s.store_tools), None)
