"""Images for the lab's containers: pulled where a registry answers, else loaded from the controller."""

from __future__ import annotations

import shlex
import threading

from fabric import Connection

from labctl.errors import HostFailure, StepFailed
from labctl.executors.images import ImageArchive, archive_from_path, busybox_rootfs, ensure_image
from labctl.executors.local import tail
from labctl.executors.remote import Hosts
from labctl.model.checks import normal_image_ref
from labctl.model.inventory import Inventory
from labctl.model.playbook import Playbook
from labctl.plan.preflight import HostFacts
from labctl.ui import Progress

PULL_TIMEOUT = 180  # seconds: one image pull; an unreachable registry fails within a second or two


def missing_images(pb: Playbook, facts: dict[str, HostFacts]) -> dict[str, dict[str, str]]:
    """host -> {image ref: first container that needs it} for images the host does not have."""
    result: dict[str, dict[str, str]] = {}
    for c in pb.containers:
        ref = normal_image_ref(c.image)
        if c.host in facts and ref not in facts[c.host].images:
            result.setdefault(c.host, {}).setdefault(ref, c.name)
    return result


class ArchiveCache:
    """Archives built on the controller once, shared by the host threads."""

    def __init__(self, inv: Inventory, pb: Playbook) -> None:
        self.inv, self.pb = inv, pb
        self._lock = threading.Lock()
        self._built: dict[str, ImageArchive | None] = {}

    def get(self, ref: str) -> ImageArchive | None:
        with self._lock:
            if ref not in self._built:
                self._built[ref] = self._build(ref)
            return self._built[ref]

    def _build(self, ref: str) -> ImageArchive | None:
        path = next((p for r, p in self.pb.images if normal_image_ref(r) == ref), None)
        if path is not None:
            return archive_from_path(path, ref)
        if ref == normal_image_ref(self.inv.image):
            return busybox_rootfs(ref)
        return None


def ensure_images(inv: Inventory, pb: Playbook, hosts: Hosts, facts: dict[str, HostFacts], progress: Progress,
                  changed: list[tuple[str, str]]) -> None:
    todo = missing_images(pb, facts)
    if not todo:
        return
    cache = ArchiveCache(inv, pb)

    def one(host: str, conn: Connection) -> None:
        for ref, container in todo[host].items():
            changed.append((host, provide(conn, host, ref, container, cache, progress)))

    hosts.each(one, list(todo), step="images")


def provide(conn: Connection, host: str, ref: str, container: str, cache: ArchiveCache, progress: Progress) -> str:
    """Pull, else load from the controller; a clear failure naming the container when neither works."""
    pulled = None
    if not ref.startswith("labctl/"):  # labctl's own images exist on no registry
        progress.step(host, f"image {ref}: docker pull")
        pulled = conn.run(f"timeout {PULL_TIMEOUT} docker pull -q {shlex.quote(ref)}", hide=True, warn=True)
        if pulled.ok:
            return f"image {ref} pulled"
    archive = cache.get(ref)
    if archive is not None:
        progress.step(host, f"image {ref}: loading from the controller")
        ensure_image(conn, archive)
        if not conn.run(f"docker image inspect {shlex.quote(ref)}", hide=True, warn=True).ok:
            held = conn.run("docker image ls --format '{{.Repository}}:{{.Tag}}'", hide=True, warn=True).stdout
            raise StepFailed(HostFailure(
                host, f"docker load ({ref})", None, f"images on the host now: {' '.join(str(held).split())}",
                entry=f"images.{ref}", hint=f"the archive does not hold an image tagged {ref}; save it with "
                                            f"`docker save {ref} -o FILE` or give a root filesystem instead"))
        return f"image {ref} loaded from the controller"
    why = tail(str(pulled.stderr)) if pulled is not None else "labctl/* images are built by labctl, not pulled"
    raise StepFailed(HostFailure(
        host, f"docker pull {ref}", pulled.exited if pulled is not None else None, why,
        entry=f"containers.{container}",
        hint=f"no registry is reachable from {host} and the playbook lists no archive for {ref}: add "
             f"`images: {{{ref}: path/to/archive.tar}}` (a `docker save` tar or a rootfs) to the playbook, or run "
             f"`labctl image load ARCHIVE --tag {ref}`"))
