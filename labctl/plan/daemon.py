"""daemon.json: the keys labctl owns, merged into whatever else the host's config holds."""

from __future__ import annotations

import json

from labctl.model.inventory import Inventory
from labctl.model.playbook import Playbook
from labctl.plan.lock import PRIVATE_DIR

DAEMON_JSON = "/etc/docker/daemon.json"
BACKUP_JSON = f"{PRIVATE_DIR}/daemon.json.labctl-backup"   # labctl's backup of the values it replaced
OWNED_KEYS = ("cluster-store", "cluster-advertise", "bip")
ABSENT = "__labctl_absent__"
DOCKER0_BEFORE = "labctl:docker0-address"  # in the backup only: docker0's address before labctl set a bip
OWNER = "labctl:lab"                        # in the backup only: the lab whose `up` changed daemon.json


def parse_config(text: str) -> tuple[dict, str]:
    """daemon.json (or labctl's backup of it) as a dict, and why it cannot be used ("" when it can).
    An empty or missing file is an empty config."""
    if not text.strip():
        return {}, ""
    try:
        data = json.loads(text)
    except ValueError as exc:
        return {}, f"is not valid JSON ({exc})"
    return (data, "") if isinstance(data, dict) else ({}, "must hold a JSON object")


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


def backup_of(current: dict, docker0_address: str | None = None, lab: str = "") -> dict:
    """The values of owned keys before labctl changed them (ABSENT when the key was not there),
    docker0's address then (so that down can give it back) and the lab that made the change."""
    backup = {k: current.get(k, ABSENT) for k in OWNED_KEYS}
    backup[DOCKER0_BEFORE] = docker0_address or ABSENT
    backup[OWNER] = lab
    return backup


def restore(current: dict, backup: dict) -> dict:
    new = {k: v for k, v in current.items() if k not in OWNED_KEYS}
    new.update({k: v for k, v in backup.items() if k in OWNED_KEYS and v != ABSENT})
    return new


def restore_sequence(current: dict, backup: dict, docker0_now: str | None) -> list[dict]:
    """The daemon.json contents to apply in turn, each followed by a dockerd restart.

    dockerd keeps docker0's address in its own network store and re-uses it when `bip` goes away, so
    dropping labctl's bip alone would leave the lab's subnet on docker0. When the original config had no
    bip, one restart with the original address as bip first puts docker0 back; the final config follows.
    """
    final = restore(current, backup)
    if final == current:
        return []
    before = backup.get(DOCKER0_BEFORE, ABSENT)
    if "bip" not in final and before != ABSENT and docker0_now and docker0_now != before:
        return [{**final, "bip": before}, final]
    return [final]
