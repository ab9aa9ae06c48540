"""Engines from Debian's archive, fetched once into a cache on the controller (`labctl engines fetch`).

apt does the fetching with a private configuration (its own sources list, state and cache under the cache
directory; the machine's apt sources, lists and preferences are never read or written): `apt-get update` checks the
release's signature against the machine's Debian archive keyring, `apt-get download` checks each package's hash
against the signed index, and labctl checks the SHA-256 once more before `dpkg -x` unpacks it. Each engine lives
in a directory keyed by its packages' versions, written under a temporary name and renamed when complete, so a run
killed half-way leaves nothing that looks cached.

After unpacking, every binary the engine needs is started once (`--version`). A helper that does not run on this
machine's libc (Debian 13's runc needs glibc 2.38) is removed from the engine's tree, so that this machine's own
is found on PATH instead, and the manifest says so.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import mmap
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field

from labctl import engines
from labctl.engines.debian import archive_url, sources_line
from labctl.errors import LabctlError, PrerequisiteError
from labctl.facts import dialect
from labctl.ui import Progress

CACHE_ENV = "LABCTL_ENGINE_CACHE"
DEFAULT_CACHE = "/var/cache/labctl/engines"
MIRROR_ENV = "LABCTL_DEBIAN_MIRROR"      # another Debian mirror (tests point it at loopback to see apt fail)
MANIFEST = "manifest.json"
APT_SOURCES_FILES = ("/etc/apt/sources.list",)
APT_SOURCES_DIR = "/etc/apt/sources.list.d"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Byte strings in dockerd that show which cluster-store backends and which control planes it was built with.
BACKEND_MARKERS = {"consul": b"docker/libkv/store/consul", "etcd": b"docker/libkv/store/etcd",
                   "zookeeper": b"docker/libkv/store/zookeeper"}
FETCH_TIMEOUT = 900


def cache_root() -> str:
    return os.environ.get(CACHE_ENV) or DEFAULT_CACHE


@dataclass(frozen=True)
class Unpacked:
    """One fetched package set (an engine, or a store's server) as it lies in the cache."""

    name: str                         # engine name ("debian-13") or tool ("consul")
    release: str
    directory: str
    packages: dict[str, str]          # package -> version
    binaries: dict[str, str]          # what runs it: dockerd, docker, containerd, consul ... -> absolute path
    version: str = ""                 # dockerd's (or consul's) own version line
    backends: tuple[str, ...] = ()    # cluster-store backends compiled into dockerd
    swarm: bool = False
    from_host: dict[str, str] = field(default_factory=dict)   # helper -> why this machine's own is used

    @property
    def root(self) -> str:
        return os.path.join(self.directory, "root")

    @property
    def path(self) -> str:
        """PATH for a host that runs this engine: its own binaries first, this machine's after."""
        return f"{self.root}/usr/sbin:{self.root}/usr/bin:{SYSTEM_PATH}"

    def as_dict(self) -> dict:
        return {"name": self.name, "release": self.release, "directory": self.directory,
                "packages": self.packages, "binaries": self.binaries, "version": self.version,
                "backends": list(self.backends), "swarm": self.swarm, "from_host": self.from_host}

    @classmethod
    def from_dict(cls, d: dict) -> Unpacked:
        return cls(name=d["name"], release=d["release"], directory=d["directory"], packages=dict(d["packages"]),
                   binaries=dict(d["binaries"]), version=d.get("version", ""),
                   backends=tuple(d.get("backends", ())), swarm=bool(d.get("swarm")),
                   from_host=dict(d.get("from_host", {})))


# ---------------------------------------------------------------- the cache


@contextlib.contextmanager
def _cache_lock() -> Iterator[None]:
    os.makedirs(cache_root(), mode=0o755, exist_ok=True)
    with open(os.path.join(cache_root(), ".lock"), "w", encoding="ascii") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _group_dir(name: str) -> str:
    return os.path.join(cache_root(), name)


def cached(name: str) -> Unpacked | None:
    """The newest complete fetch of this engine or tool, or None (never touches the network)."""
    group = _group_dir(name)
    if not os.path.isdir(group):
        return None
    found: list[tuple[float, Unpacked]] = []
    for entry in os.listdir(group):
        manifest = os.path.join(group, entry, MANIFEST)
        if ".tmp-" in entry or not os.path.isfile(manifest):
            continue
        try:
            with open(manifest, encoding="utf-8") as fh:
                unpacked = Unpacked.from_dict(json.load(fh))
        except (OSError, ValueError, KeyError):
            continue
        if all(os.path.exists(p) for p in unpacked.binaries.values()):
            found.append((os.path.getmtime(manifest), unpacked))
    return max(found, key=lambda t: t[0])[1] if found else None


def ensure(name: str, progress: Progress, packages: tuple[str, ...] | None = None, release: str | None = None,
           helpers: tuple[str, ...] | None = None) -> Unpacked:
    """The cached engine (or store tool), fetched first when it is not in the cache."""
    have = cached(name)
    if have is not None:
        return have
    return fetch(name, progress, packages=packages, release=release, helpers=helpers)


def ensure_engine(name: str, progress: Progress) -> Unpacked:
    src = engines.get(name)
    if not src.fetched:
        raise LabctlError(f"engine {name!r} is the host's own; there is nothing to fetch")
    return ensure(name, progress)


def ensure_store_tool(backend: str, progress: Progress) -> Unpacked:
    """The store's server from the release that packages it (Consul: Debian 11)."""
    src = engines.store_tool_source(backend)
    if src is None or src.release is None:
        raise LabctlError(f"no Debian release labctl knows packages a {backend} server")
    return ensure(backend, progress, packages=src.store_tools[backend], release=src.release, helpers=())


def fetch(name: str, progress: Progress, packages: tuple[str, ...] | None = None, release: str | None = None,
          helpers: tuple[str, ...] | None = None) -> Unpacked:
    """Fetch the newest packages of the release (a no-op when that version is cached already)."""
    if packages is None or release is None:
        src = engines.get(name)
        if not src.fetched or src.release is None:
            raise LabctlError(f"engine {name!r} is the host's own; there is nothing to fetch")
        packages, release, helpers = src.packages, src.release, src.helpers
    if os.geteuid() != 0:
        raise PrerequisiteError(f"fetching {name} writes {cache_root()}", hint="run as root")
    for tool in ("apt-get", "apt-cache", "dpkg"):
        if shutil.which(tool) is None:
            raise PrerequisiteError(f"{tool} is missing on this machine: engines come from Debian's archive "
                                    "through apt", hint="run labctl on Debian or Ubuntu")
    with _cache_lock():
        apt = PrivateApt(release)
        progress.step("controller", f"{name}: apt-get update ({release}, private configuration)")
        apt.update()
        versions = apt.versions(packages)
        key = "_".join(f"{p}={v}" for p, v in sorted(versions.items()))
        directory = os.path.join(_group_dir(name), hashlib.sha256(key.encode()).hexdigest()[:12])
        manifest = os.path.join(directory, MANIFEST)
        if os.path.isfile(manifest):
            progress.step("controller", f"{name}: already cached ({_describe(versions)})")
            unpacked = cached_at(directory)
            if unpacked is not None:
                return unpacked
        _remove_partial(_group_dir(name))
        tmp = f"{directory}.tmp-{os.getpid()}"
        os.makedirs(os.path.join(tmp, "debs"))
        progress.step("controller", f"{name}: downloading {_describe(versions)}")
        debs = apt.download(versions, os.path.join(tmp, "debs"))
        root = os.path.join(tmp, "root")
        os.makedirs(root)
        for deb in debs.values():
            _run(["dpkg", "-x", deb, root], f"unpacking {os.path.basename(deb)}")
        relative_links(root)
        unpacked = _inspect(name, release, directory, root, versions, helpers or ())
        shutil.rmtree(os.path.join(tmp, "debs"))
        with open(os.path.join(tmp, MANIFEST), "w", encoding="utf-8") as fh:
            json.dump(unpacked.as_dict(), fh, indent=2, sort_keys=True)
        os.rename(tmp, directory)
        progress.step("controller", f"{name}: cached in {directory} ({unpacked.version})")
        return unpacked


def cached_at(directory: str) -> Unpacked | None:
    try:
        with open(os.path.join(directory, MANIFEST), encoding="utf-8") as fh:
            return Unpacked.from_dict(json.load(fh))
    except (OSError, ValueError, KeyError):
        return None


def _remove_partial(group: str) -> None:
    """Directories of fetches that were killed before their rename (their PID is gone)."""
    if not os.path.isdir(group):
        return
    for entry in os.listdir(group):
        if ".tmp-" not in entry:
            continue
        pid = entry.rsplit(".tmp-", 1)[1]
        if not pid.isdigit() or not os.path.exists(f"/proc/{pid}") or int(pid) == os.getpid():
            shutil.rmtree(os.path.join(group, entry), ignore_errors=True)


def _describe(versions: dict[str, str]) -> str:
    return ", ".join(f"{p} {v}" for p, v in versions.items())


def _run(argv: list[str], what: str, cwd: str | None = None, timeout: float = FETCH_TIMEOUT) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise LabctlError(f"{what}: timed out after {timeout:g}s") from None
    if proc.returncode != 0:
        words = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
        raise LabctlError(f"{what} failed (exit {proc.returncode}); apt said:\n{words or '(nothing)'}",
                          hint="check that this machine reaches its Debian mirror (`apt-get update` works), "
                               f"or set {MIRROR_ENV} to another Debian mirror")
    return proc.stdout


# ---------------------------------------------------------------- apt with a private configuration


def machine_archive() -> str:
    """The archive of this machine's apt sources (or LABCTL_DEBIAN_MIRROR)."""
    if os.environ.get(MIRROR_ENV):
        return os.environ[MIRROR_ENV].rstrip("/")
    texts = []
    files = list(APT_SOURCES_FILES)
    if os.path.isdir(APT_SOURCES_DIR):
        files += [os.path.join(APT_SOURCES_DIR, f) for f in sorted(os.listdir(APT_SOURCES_DIR))
                  if f.endswith((".list", ".sources"))]
    for path in files:
        with contextlib.suppress(OSError), open(path, encoding="utf-8", errors="replace") as fh:
            texts.append(fh.read())
    url = archive_url("\n\n".join(texts))
    if url is None:
        raise PrerequisiteError("this machine's apt sources name no Debian archive to fetch other releases from",
                                hint=f"set {MIRROR_ENV} to a Debian mirror's URL")
    return url


class PrivateApt:
    """apt-get and apt-cache with their own sources list, state, status and cache: the machine's stay untouched."""

    def __init__(self, release: str) -> None:
        self.release = release
        self.dir = os.path.join(cache_root(), "apt", release)
        for sub in ("state/lists/partial", "cache/archives/partial"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        self.sources = os.path.join(self.dir, "sources.list")
        with open(self.sources, "w", encoding="ascii") as fh:
            fh.write(sources_line(machine_archive(), release))
        self.status = os.path.join(self.dir, "status")       # empty: "installed" never hides the release's version
        open(self.status, "a", encoding="ascii").close()

    def options(self) -> list[str]:
        opts = {"Dir::Etc::SourceList": self.sources, "Dir::Etc::SourceParts": "/dev/null",
                "Dir::Etc::Preferences": "/dev/null", "Dir::Etc::PreferencesParts": "/dev/null",
                "Dir::State": os.path.join(self.dir, "state"), "Dir::State::status": self.status,
                "Dir::Cache": os.path.join(self.dir, "cache"), "APT::Sandbox::User": "root"}
        return [arg for k, v in opts.items() for arg in ("-o", f"{k}={v}")]

    def update(self) -> None:
        _run(["apt-get", "-q", *self.options(), "update"], f"apt-get update of Debian {self.release}")
        # apt-get update exits 0 when a source fails with a warning only; an empty index is an error here
        lists = os.listdir(os.path.join(self.dir, "state", "lists"))
        if not any(f.endswith(("_Packages", "_Packages.lz4", "_Packages.xz", "_Packages.gz")) for f in lists):
            raise LabctlError(f"apt-get update of Debian {self.release} got no package index from "
                              f"{machine_archive()}", hint=f"check the mirror, or set {MIRROR_ENV}")

    def versions(self, packages: tuple[str, ...]) -> dict[str, str]:
        result: dict[str, str] = {}
        for pkg in packages:
            out = _run(["apt-cache", *self.options(), "show", "--no-all-versions", pkg],
                       f"apt-cache show {pkg} (Debian {self.release})")
            version = next((line.split(":", 1)[1].strip() for line in out.splitlines()
                            if line.startswith("Version:")), "")
            if not version:
                raise LabctlError(f"Debian {self.release} has no package {pkg}")
            result[pkg] = version
        return result

    def hashes(self, versions: dict[str, str]) -> dict[str, str]:
        result = {}
        for pkg, version in versions.items():
            out = _run(["apt-cache", *self.options(), "show", f"{pkg}={version}"], f"apt-cache show {pkg}={version}")
            result[pkg] = next((line.split(":", 1)[1].strip() for line in out.splitlines()
                                if line.startswith("SHA256:")), "")
        return result

    def download(self, versions: dict[str, str], dest: str) -> dict[str, str]:
        wanted = [f"{p}={v}" for p, v in versions.items()]
        _run(["apt-get", "-q", *self.options(), "download", *wanted], f"apt-get download {' '.join(wanted)}",
             cwd=dest)
        hashes = self.hashes(versions)
        files = os.listdir(dest)
        debs: dict[str, str] = {}
        for pkg in versions:
            match = [f for f in files if f.startswith(f"{pkg}_") and f.endswith(".deb")]
            if len(match) != 1:
                raise LabctlError(f"apt-get download left {len(match)} files for {pkg} in {dest}")
            path = os.path.join(dest, match[0])
            if hashes[pkg] and _sha256(path) != hashes[pkg]:
                raise LabctlError(f"{match[0]}: SHA-256 differs from Debian {self.release}'s signed index")
            debs[pkg] = path
        return debs


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------- what was fetched


def relative_links(root: str) -> None:
    """Absolute symlinks in the packages (docker-init -> /usr/bin/tini-static) would point at this machine's files:
    made relative, they point inside the engine's own tree."""
    for dirpath, dirnames, filenames in os.walk(root):
        for entry in dirnames + filenames:
            path = os.path.join(dirpath, entry)
            if not os.path.islink(path):
                continue
            target = os.readlink(path)
            if target.startswith("/"):
                os.unlink(path)
                os.symlink(os.path.relpath(root + target, dirpath), path)


def _find(root: str, name: str) -> str | None:
    for sub in ("usr/sbin", "usr/bin", "sbin", "bin"):
        path = os.path.join(root, sub, name)
        if os.path.lexists(path):
            return path
    return None


def _runs(path: str, args: tuple[str, ...] = ("--version",)) -> tuple[bool, str]:
    try:
        proc = subprocess.run([path, *args], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    text = (proc.stdout + proc.stderr).strip()
    return proc.returncode == 0, text.splitlines()[0] if text else ""


def markers(path: str) -> tuple[tuple[str, ...], bool]:
    """(cluster-store backends, swarm) compiled into a dockerd binary."""
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        backends = tuple(b for b, m in BACKEND_MARKERS.items() if data.find(m) >= 0)
        return backends, data.find(dialect.SWARMKIT_MARKER) >= 0


def _inspect(name: str, release: str, directory: str, tmp_root: str, versions: dict[str, str],
             helpers: tuple[str, ...]) -> Unpacked:
    final_root = os.path.join(directory, "root")
    binaries: dict[str, str] = {}
    from_host: dict[str, str] = {}
    if "consul" in versions:
        wanted: tuple[str, ...] = ("consul",)
        version_args: tuple[str, ...] = ("version",)
    else:
        wanted, version_args = ("dockerd", "docker", "containerd", "containerd-shim-runc-v2"), ("--version",)
    version = ""
    for binary in wanted:
        path = _find(tmp_root, binary)
        if path is None:
            raise LabctlError(f"{name}: {binary} is not in the packages {_describe(versions)}")
        ok, line = _runs(path, version_args if binary in ("dockerd", "consul") else ("--version",))
        if not ok and binary != "containerd-shim-runc-v2":   # the shim prints usage and exits 1 on --version
            raise LabctlError(f"{name}: {binary} from Debian {release} does not run on this machine: {line}")
        if binary in ("dockerd", "consul"):
            version = line
        binaries[binary] = path.replace(tmp_root, final_root, 1)
    for helper in helpers:
        path = _find(tmp_root, helper)
        ok, line = _runs(path) if path else (False, "not in the packages")
        if ok and path:
            binaries[helper] = path.replace(tmp_root, final_root, 1)
            continue
        own = shutil.which(helper, path=SYSTEM_PATH)
        if own is None:
            raise LabctlError(f"{name}: {helper} from Debian {release} does not run here ({line}) and this machine "
                              f"has none", hint=f"install this machine's own (apt-get install {helper})")
        if path:
            os.unlink(path)
        why = line.replace(tmp_root, final_root).rsplit(": ", 1)[-1].split(" (required by")[0]
        from_host[helper] = f"{own} (Debian {release}'s does not run here: {why[:120]})"
        binaries[helper] = own
    backends, swarm = markers(_find(tmp_root, "dockerd") or "") if "dockerd" in binaries else ((), False)
    return Unpacked(name=name, release=release, directory=directory, packages=dict(versions), binaries=binaries,
                    version=version, backends=backends, swarm=swarm, from_host=from_host)


# ---------------------------------------------------------------- `labctl engines`


def system_engine() -> dict:
    """This machine's own dockerd, as sandbox hosts with `engine: system` run it."""
    path = shutil.which("dockerd", path=SYSTEM_PATH)
    if path is None:
        return {"version": "", "backends": [], "swarm": False, "path": None}
    ok, line = _runs(path)
    backends, swarm = markers(path)
    return {"version": line if ok else "", "backends": list(backends), "swarm": swarm, "path": path}


def describe() -> list[dict]:
    """One row per engine source and per store tool: version, backends, swarm, whether it is cached."""
    rows: list[dict] = []
    for src in engines.all_sources():
        if not src.fetched:
            info = system_engine()
            rows.append({"name": src.name, "kind": "engine", "summary": src.summary, "cached": None,
                         "version": info["version"], "backends": info["backends"], "swarm": info["swarm"],
                         "path": info["path"], "packages": {}, "from_host": {}})
            continue
        have = cached(src.name)
        rows.append(_row(src.name, "engine", src.summary, have))
        for tool in src.store_tools:
            rows.append(_row(tool, "store", f"{tool} server from Debian {src.version_id} ({src.release})",
                             cached(tool)))
    return rows


def _row(name: str, kind: str, summary: str, have: Unpacked | None) -> dict:
    return {"name": name, "kind": kind, "summary": summary, "cached": have is not None,
            "version": have.version if have else "", "backends": list(have.backends) if have else [],
            "swarm": bool(have and have.swarm), "path": have.directory if have else None,
            "packages": have.packages if have else {}, "from_host": have.from_host if have else {}}


