"""Which control plane carries a lab's overlay networks on these hosts (pure: facts in, decision out).

The planes are plug-ins (labctl.planes). A playbook names one, or `auto`: then the planes that `auto` may take are
tried in their order (the cluster store first, when the playbook declares one and every docker host's engine has
the backend it needs; else swarm), and the last one is taken even when it refuses some engine, so that its refusal
says what to change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from labctl.model.playbook import Playbook
from labctl.planes import registry as planes
from labctl.planes.base import Engine, engine_version
from labctl.planes.kvstore.plan import kvstore_refusal

__all__ = ["Decision", "Engine", "decide", "effective", "engine_version", "kvstore_refusal", "needs_decision"]


@dataclass
class Decision:
    control: str                      # the plane's name
    why: str                          # one line for validate and the first progress line
    problems: list[str] = field(default_factory=list)  # refusals (exit 2) when the choice cannot be taken


def decide(requested: str, store_backend: str | None, engines: list[Engine]) -> Decision:
    """The control plane for these engines. requested: auto or a plane's name; store_backend: the playbook's store
    backend (None when it declares none)."""
    if requested != "auto":
        plane = planes.plan_half(requested)
        refused = plane.refusals(store_backend, engines)
        return Decision(requested, plane.requested_why, [plane.problem(h, w) for h, w in refused.items()])
    order = planes.auto_order()
    skipped = ""
    for i, name in enumerate(order):
        plane = planes.plan_half(name)
        skip = plane.auto_skip(store_backend, engines)
        if skip is None:
            return Decision(name, f"auto: {skipped}" if skipped else plane.auto_why(store_backend))
        if i == len(order) - 1:
            refused = plane.refusals(store_backend, engines)
            return Decision(name, f"auto: {skipped or skip}", [plane.problem(h, w) for h, w in refused.items()])
        skipped = skipped or skip
    raise ValueError("no control plane may be taken by `auto`")


def needs_decision(pb: Playbook) -> bool:
    return pb.store is not None or any(n.driver == "overlay" for n in pb.networks)


def effective(pb: Playbook, control: str) -> Playbook:
    """The playbook as the chosen control plane runs it (swarm: no store, attachable overlays; vxlan: macvlan on
    labctl's devices)."""
    return planes.plan_half(control).effective(pb)
