"""The description of an engine source, and the registry every source module adds itself to."""

from __future__ import annotations

from dataclasses import dataclass, field

SYSTEM = "system"


@dataclass(frozen=True)
class EngineSource:
    name: str                          # the inventory value: "system", "debian-11", ...
    summary: str                       # one line for `labctl engines`
    release: str | None = None         # Debian codename ("bullseye"); None: nothing to fetch (the host's own engine)
    version_id: str | None = None      # "11": the os-release VERSION_ID of that release
    packages: tuple[str, ...] = ()     # what makes the engine (docker hosts)
    # binaries the engine needs that may not run on the controller's libc: replaced by the controller's own
    # (Debian 13's runc needs glibc 2.38; Debian 12 has 2.36). Each is tried after unpacking.
    helpers: tuple[str, ...] = ()
    store_tools: dict[str, tuple[str, ...]] = field(default_factory=dict)  # store backend -> packages it supplies

    def helpers_of_newer(self, host_version_id: str) -> tuple[str, ...]:
        """Packages a host of this Debian release keeps its own of: a newer release's runc and tini need a newer
        glibc (Debian 13's: 2.38; Debian 12 has 2.36)."""
        try:
            newer = int(self.version_id or 0) > int(host_version_id)
        except ValueError:
            newer = False
        return tuple(p for p in self.packages if p in ("runc", "tini")) if newer else ()

    @property
    def fetched(self) -> bool:
        """Whether labctl fetches this engine (False for the host's own)."""
        return self.release is not None


_SOURCES: dict[str, EngineSource] = {}


def register(source: EngineSource) -> EngineSource:
    if source.name in _SOURCES:
        raise ValueError(f"engine source {source.name!r} registered twice")
    _SOURCES[source.name] = source
    return source
