"""The pure half every control plane implements (labctl.planes): facts, whether the engines can carry it, the
playbook as it runs it, and what status shows of it. No I/O: facts in, decisions and text out."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from labctl.facts import Fact
from labctl.model.playbook import Playbook
from labctl.planes.traits import Traits


def engine_version(text: str) -> tuple[int, int] | None:
    """(major, minor) of an engine version as `docker version` prints it: "20.10.24+dfsg1", "28.2.2", "17.06.2-ce",
    "1.13.1", "24.0.7-0ubuntu4"; None when there is no engine or the text is not a version."""
    match = re.match(r"^\s*(\d{1,4})\.(\d{1,4})(?:\.|$|[-+~])", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


@dataclass(frozen=True)
class Engine:
    host: str
    version: str
    consul_backend: bool = False


class PlanePlan:
    """Defaults: a plane with no facts of its own, any engine, the playbook unchanged, nothing in status."""

    traits: Traits
    facts_script = ""          # shell whose output parse_facts reads, in preflight's round trip ("": none)
    status_script: str | None = None   # the same for status's round trip (None: facts_script)
    requested_why = "requested in the playbook"
    shown_always = False       # status shows host_row for every lab (not only when this plane is the lab's)

    @property
    def name(self) -> str:
        return self.traits.name

    @property
    def status_query(self) -> str:
        return self.facts_script if self.status_script is None else self.status_script

    # ---- facts
    def parse_facts(self, host: str, text: str) -> Any:
        return None

    @property
    def fact(self) -> Fact[Any]:
        """facts_script and parse_facts as one fact, for preflight's batch."""
        return Fact(f"plane.{self.name}", self.facts_script or "true", self.parse_facts)

    @property
    def status_fact(self) -> Fact[Any]:
        """The same for status's batch."""
        return Fact(f"plane.{self.name}.status", self.status_query or "true", self.parse_facts)

    # ---- the decision
    def refusals(self, store_backend: str | None, engines: list[Engine]) -> dict[str, str]:
        """host -> why its engine cannot carry this plane."""
        return {}

    def problem(self, host: str, why: str) -> str:
        """The refusal (exit 2) when the plane is taken anyway (requested, or `auto`'s last resort)."""
        return f"[{host}] overlay.control {self.name}: {why}"

    def auto_skip(self, store_backend: str | None, engines: list[Engine]) -> str | None:
        """Why `auto` passes this plane over (None: it takes it)."""
        no = self.refusals(store_backend, engines)
        return "; ".join(f"{h}: {w}" for h, w in sorted(no.items())) or None

    def auto_why(self, store_backend: str | None) -> str:
        return f"auto: every docker host's engine can carry {self.name}"

    def effective(self, pb: Playbook) -> Playbook:
        """The playbook as this plane runs it."""
        return replace(pb, control=self.name)

    # ---- verify's causes (c: a failed plan.verify Check; diag: plan.verify.Diagnosis, its `plane` what this plane's
    # executor half found in ControlPlane.diagnose). Typed Any: plan.verify imports this module.
    overlay_missing = "it has not joined the overlay; run `labctl up`"   # a host does not see a Docker overlay

    def cause(self, c: Any, pb: Playbook, diag: Any) -> str | None:
        """This plane's word on any failed check, before the generic causes (None: nothing to say)."""
        return None

    def overlay_cause(self, c: Any, diag: Any) -> str | None:
        """Its word on a failed check across hosts on a Docker overlay, after the cluster store's."""
        return None

    # ---- status
    def vni_of(self, network: dict[str, Any]) -> int | None:
        """The VXLAN ID of a network (`docker network inspect` of it) when this plane carries it on its own devices;
        Docker's overlays answer for themselves."""
        return None

    def evidence(self, pb: Playbook, facts: dict[str, Any]) -> int:
        """How surely this plane is the lab's now: 2 its own objects are on the hosts, 1 the playbook implies it."""
        return 0

    def host_row(self, pb: Playbook, facts: Any) -> dict[str, Any]:
        """One host's part in status --json's control.hosts."""
        return {}

    def status_text(self, rows: dict[str, dict[str, Any]]) -> str:
        """After "overlay control plane: NAME (requested: ...)"; "" for nothing more."""
        return ""
