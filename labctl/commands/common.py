"""What several commands share: loading the inventory, the sandbox-only guard, files written for the user."""

from __future__ import annotations

import argparse
import os

from labctl.errors import LabctlError, Problem, ValidationError
from labctl.model.inventory import Inventory, load_inventory
from labctl.model.playbook import Playbook
from labctl.providers import sandbox


def load(args: argparse.Namespace, other_labs: bool = False) -> Inventory:
    return load_inventory(args.inventory, sandbox.existing_labs() if other_labs else None)


def require_sandbox(inv: Inventory, command: str) -> None:
    if inv.provider != "sandbox":
        message = f"`{command}` works on sandbox inventories only (this one is {inv.provider!r})"
        raise ValidationError([Problem(inv.source, "provider", message, "conflict")])


def check_image_archives(pb: Playbook) -> None:
    """The playbook's `images:` archives live on this machine: a missing one is bad input, found before any host."""
    problems = [Problem(pb.source, f"images.{ref}", f"{path} does not exist on this machine; give the path of a "
                        "`docker save` tar, a root filesystem tar or a directory (relative to the playbook)", "missing")
                for ref, path in pb.images if not os.path.exists(path)]
    if problems:
        raise ValidationError(problems)


def write_file(path: str, text: str, atomic: bool = False) -> None:
    """`atomic`: written beside the file, then renamed over it, so a reader sees the old file or the new one."""
    target = path
    if atomic and (os.path.isfile(path) or not os.path.exists(path)):
        target = os.path.join(os.path.dirname(path) or ".", f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(target, "w", encoding="utf-8") as fh:
            fh.write(text)
        if target != path:
            os.replace(target, path)
    except OSError as exc:
        if target != path and os.path.exists(target):
            os.unlink(target)
        raise LabctlError(f"cannot write {path}: {exc.strerror}") from None
