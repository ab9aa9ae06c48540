"""What a control plane is, as plain data: what the playbook validator and the pipeline need to know before any of
the plane's code runs. Pure, and imports nothing of labctl, so that model.playbook can read it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Traits:
    name: str                  # the word in `overlay: {control: NAME}`
    summary: str               # one line for `labctl validate`
    store: str                 # "required": overlays need the playbook's store; "refused": the plane is its own
    docker_overlay: bool       # Docker's overlay driver carries the overlays (docker_gwbridge, gossip to wait for)
    own_vnis: bool = False     # labctl numbers the overlays' VXLAN IDs and makes per-host devices (per-host ranges)
    auto: int | None = None    # `auto` tries the planes with a number, lowest first; None: only when asked for
