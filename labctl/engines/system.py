"""`engine: system`: whatever Docker Engine the host already has (or `labctl provision` installs by default)."""

from __future__ import annotations

from labctl.engines.base import SYSTEM, EngineSource, register

register(EngineSource(name=SYSTEM, summary="the host's own Docker Engine (sandbox hosts: this machine's dockerd)"))
