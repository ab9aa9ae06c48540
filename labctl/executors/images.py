"""Lab images without a registry: build a busybox rootfs, or take a local tar/dir, and load it over SSH.

The archive is built deterministically (fixed mtimes and owners) so its sha256 identifies it; the digest
is stored as the image's comment, which makes a second load a no-op.
"""

from __future__ import annotations

import hashlib
import io
import os
import shlex
import subprocess
import tarfile
from dataclasses import dataclass

from fabric import Connection

from labctl.errors import LabctlError
from labctl.executors.services import RUN_DIR

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
ROOTFS_DIRS = ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "proc", "sys", "dev", "root", "var/run",
               "var/www")
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"


@dataclass(frozen=True)
class ImageArchive:
    """A tar ready to send: a rootfs for `docker import` or a `docker save` archive for `docker load`."""

    tag: str
    data: bytes
    kind: str  # "rootfs" | "saved"

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _info(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    return _normalize(ti)


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    ti = _info(name, mode=mode)
    ti.size = len(data)
    tar.addfile(ti, io.BytesIO(data))


def find_busybox() -> str:
    for path in BUSYBOX_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    raise LabctlError("busybox not found", hint="apt-get install busybox-static (a static build is required)")


def busybox_rootfs(tag: str, busybox: str | None = None) -> ImageArchive:
    """A ~1 MB rootfs: static busybox plus links for every applet (sh, ping, ip, nc, wget, httpd, ...)."""
    busybox = busybox or find_busybox()
    applets = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, check=True).stdout.split()
    with open(busybox, "rb") as fh:
        binary = fh.read()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for d in ROOTFS_DIRS:
            mode = 0o1777 if d == "tmp" else 0o755
            tar.addfile(_info(d, tarfile.DIRTYPE, mode))
        _add_file(tar, "bin/busybox", binary, 0o755)
        for path in sorted(set(applets)):
            if path == "bin/busybox":
                continue
            link = _info(path, tarfile.SYMTYPE, 0o777)
            link.linkname = "/bin/busybox"
            tar.addfile(link)
        _add_file(tar, "etc/passwd", PASSWD.encode())
        _add_file(tar, "etc/group", GROUP.encode())
    return ImageArchive(tag=tag, data=buf.getvalue(), kind="rootfs")


def archive_from_path(path: str, tag: str | None) -> ImageArchive:
    """A local directory (a rootfs) or tar file (rootfs or `docker save` output) as an ImageArchive."""
    if os.path.isdir(path):
        if not tag:
            tag = f"labctl/{os.path.basename(os.path.normpath(path)).lower()}:latest"
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for entry in sorted(os.listdir(path)):
                tar.add(os.path.join(path, entry), arcname=entry, filter=_normalize)
        return ImageArchive(tag=tag, data=buf.getvalue(), kind="rootfs")
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            names = set(tar.getnames())
    except (OSError, tarfile.TarError) as exc:
        raise LabctlError(f"{path}: not a readable tar archive or directory ({exc})",
                          hint="give a directory holding a root filesystem, a rootfs tar, or a `docker save` tar") \
            from None
    if "manifest.json" in names:
        return ImageArchive(tag=tag or "", data=data, kind="saved")
    if not tag:
        raise LabctlError(f"{path} is a root filesystem tar: say which name it gets", hint="add --tag NAME:TAG")
    return ImageArchive(tag=tag, data=data, kind="rootfs")


def _normalize(ti: tarfile.TarInfo) -> tarfile.TarInfo:
    """Fixed time and owner: the same content always gives the same archive digest."""
    ti.mtime = 0
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    return ti


def installed_digest(conn: Connection, tag: str) -> str | None:
    res = conn.run(f"docker image inspect --format '{{{{.Comment}}}}' {shlex.quote(tag)}", warn=True, hide=True)
    if not res.ok:
        return None
    comment = str(res.stdout).strip()
    return comment.removeprefix("labctl-sha256:") if comment.startswith("labctl-sha256:") else ""


def ensure_image(conn: Connection, image: ImageArchive) -> bool:
    """Load the archive on the host unless the same digest is already there; True when it was loaded."""
    if image.kind == "rootfs" and installed_digest(conn, image.tag) == image.digest:
        return False
    remote = f"{RUN_DIR}/image-{image.digest[:16]}.tar"
    conn.run(f"mkdir -p {RUN_DIR}", hide=True)
    conn.put(io.BytesIO(image.data), remote)
    try:
        if image.kind == "saved":
            conn.run(f"docker load -q -i {shlex.quote(remote)}", hide=True)
        else:
            argv = ["docker", "import", "-m", f"labctl-sha256:{image.digest}", "-c", 'CMD ["/bin/sh"]',
                    remote, image.tag]
            conn.run(shlex.join(argv), hide=True)
    finally:
        conn.run(f"rm -f {shlex.quote(remote)}", hide=True, warn=True)
    return True
