"""Docker engines on lab hosts: start the daemon through the host's service manager, wait for it, load images."""

from __future__ import annotations

from fabric import Connection

from labctl.errors import LabctlError
from labctl.executors.enginecache import Unpacked
from labctl.executors.images import ImageArchive, ensure_image
from labctl.executors.remote import Hosts
from labctl.executors.services import ByHostInit, Service, ServiceManager
from labctl.ui import Progress

DOCKER_READY_TIMEOUT = 60


def sandbox_dockerd(lab: str, host: str, engine: Unpacked | None = None) -> Service:
    """dockerd of a sandbox host: its containers' cgroups under a per-host parent that teardown can find.

    With a fetched engine (inventory `engine:`), its dockerd runs with the engine's directories first on PATH, so it
    starts the engine's own containerd, shim, runc and docker-init. Everything else stays in
    /etc/docker/daemon.json (the host's own), which `up` manages.
    """
    cgroup = f"--cgroup-parent=labctl-{lab}-{host}"
    if engine is None:
        return Service("dockerd", argv=("/usr/sbin/dockerd", cgroup))
    return Service("dockerd", argv=(engine.binaries["dockerd"], cgroup), env={"PATH": engine.path})


def wait_docker(conn: Connection, timeout: int = DOCKER_READY_TIMEOUT) -> None:
    cmd = f"timeout {int(timeout)} sh -c 'until docker info >/dev/null 2>&1; do sleep 0.1; done'"
    if not conn.run(cmd, warn=True, hide=True).ok:
        raise LabctlError(f"docker did not answer within {timeout}s")


def ensure_engine(conn: Connection, host: str, svc: Service, manager: ServiceManager, progress: Progress) -> bool:
    changed = manager.start(conn, svc)
    if changed:
        kind = manager.manager(conn).kind if isinstance(manager, ByHostInit) else manager.kind
        progress.step(host, f"{svc.name} started ({kind})")
    try:
        wait_docker(conn)
    except LabctlError as exc:
        raise LabctlError(f"{exc.message}; {svc.name} log:\n{manager.log_tail(conn, svc)}") from None
    return changed


def load_images(hosts: Hosts, names: list[str], image: ImageArchive, progress: Progress) -> dict[str, bool]:
    def one(host: str, conn: Connection) -> bool:
        loaded = ensure_image(conn, image)
        progress.step(host, f"image {image.tag or '(from archive)'} "
                            f"{'loaded' if loaded else 'already present'}")
        return loaded

    return hosts.each(one, names, step=f"load image {image.tag}")

