"""The stub plane's pure half."""

from __future__ import annotations

from typing import Any

from labctl.planes.base import Engine, PlanePlan
from tests.unit.stubplane import TRAITS

MARKER = "/var/lib/labctl/stub.plane"


class StubPlan(PlanePlan):
    traits = TRAITS
    facts_script = f"cat {MARKER} 2>/dev/null"

    def parse_facts(self, host: str, text: str) -> str:
        return text.strip()

    def refusals(self, store_backend: str | None, engines: list[Engine]) -> dict[str, str]:
        return {e.host: "no Docker engine answers" for e in engines if not e.version}

    def evidence(self, pb: Any, facts: dict[str, Any]) -> int:
        return 2 if any(f == f"stub:{pb.name}" for f in facts.values()) else 0

    def host_row(self, pb: Any, facts: Any) -> dict[str, Any]:
        return {"stub": facts or None}

    def status_text(self, rows: dict[str, dict[str, Any]]) -> str:
        return "stub: " + ", ".join(f"{h} {v.get('stub') or '-'}" for h, v in rows.items())


PLANE = StubPlan()
