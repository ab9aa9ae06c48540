"""daemon.json: the keys labctl owns, merged into whatever else the host's config holds."""

from __future__ import annotations

from labctl.model.inventory import Inventory
from labctl.model.playbook import Playbook

OWNED_KEYS = ("cluster-store", "cluster-advertise", "bip")
ABSENT = "__labctl_absent__"


def desired_keys(inv: Inventory, pb: Playbook, host: str) -> dict[str, str]:
    keys: dict[str, str] = {}
    if pb.store is not None:
        keys["cluster-store"] = pb.store.url
        keys["cluster-advertise"] = f"{inv.underlay_interface}:2376"
    if host in pb.bips:
        keys["bip"] = pb.bips[host]
    return keys


def merge(current: dict, wanted: dict[str, str]) -> dict:
    """current with labctl's keys set to wanted (and owned keys not wanted removed); other keys untouched."""
    new = {k: v for k, v in current.items() if k not in OWNED_KEYS or k in wanted}
    new.update(wanted)
    return new


def backup_of(current: dict) -> dict:
    """The values of owned keys before labctl changed them (ABSENT when the key was not there)."""
    return {k: current.get(k, ABSENT) for k in OWNED_KEYS}


def restore(current: dict, backup: dict) -> dict:
    new = {k: v for k, v in current.items() if k not in OWNED_KEYS}
    new.update({k: v for k, v in backup.items() if v != ABSENT})
    return new
