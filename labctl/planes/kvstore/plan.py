"""The cluster store as commands: how to start, check, wipe and stop etcd or Consul on the store host.

Every command runs on the store host over SSH (the controller may not reach the underlay itself), so the same
plan works for sandbox hosts, Vagrant VMs and static machines. Docker 20.10's libkv keeps the overlay's state
under the key prefix `docker/` (etcd v2: the directory /docker); `down` removes exactly that.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from labctl.facts import dialect
from labctl.model.playbook import Playbook, Store
from labctl.planes.base import Engine, PlanePlan, engine_version
from labctl.planes.kvstore import TRAITS

ETCD_BIN = "/usr/bin/etcd"
CONSUL_BIN = "/usr/bin/consul"              # Debian 11's consul package (provisioning installs it there)
CONSUL_CONTAINER = "labctl-store-consul"
STORE_LABEL = "labctl.store"                 # not labctl.lab: `down` removes lab containers before wiping the store
HEALTH_TIMEOUT = 30


@dataclass(frozen=True)
class StorePlan:
    """How one store runs. kind "service": argv under the host's service manager; "container": docker run."""

    backend: str
    kind: str
    argv: tuple[str, ...]        # the store process (service) or the container's arguments after the image
    start: str                   # container kind: the command that starts it ("" for services)
    running: str                 # exits 0 when it runs (container kind; services ask their manager)
    stop: str                    # container kind
    health: str                  # exits 0 once the store serves requests
    wipe: str                    # removes the keys Docker wrote (the lab's networks and endpoints)
    needs: str                   # exits 0 when the host has what the store needs; else prints nothing
    needs_hint: str

    def wait_healthy(self, timeout: int = HEALTH_TIMEOUT) -> str:
        return f"timeout {int(timeout)} sh -c {shlex.quote(f'until {self.health} >/dev/null 2>&1; do sleep 0.2; done')}"


def reachability_probe(store: Store) -> str:
    """Exits 0 when this host can open a TCP connection to the store's client port (what dockerd will need)."""
    addr = store.address or store.host
    return f"timeout 3 bash -c {shlex.quote(f'</dev/tcp/{addr}/{store.port}')}"


def endpoint(store: Store) -> str:
    return f"http://{store.address or store.host}:{store.port}"


def etcd_argv(store: Store) -> tuple[str, ...]:
    """etcd bound to the underlay address only, v2 API on (Docker 20.10's libkv speaks only v2)."""
    url = endpoint(store)
    return (ETCD_BIN, "--name", store.host, "--data-dir", store.data_dir, "--enable-v2=true",
            "--listen-client-urls", url, "--advertise-client-urls", url,
            "--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
            "--initial-cluster", f"{store.host}=http://127.0.0.1:2380")


def consul_agent_args(store: Store) -> tuple[str, ...]:
    """A single Consul server: bind (serf/raft) and client (HTTP) on the underlay address only."""
    addr = store.address or store.host
    return ("agent", "-server", "-bootstrap-expect=1", "-node", store.host, "-bind", addr, "-client", addr,
            "-http-port", str(store.port), "-ui=false")


def plan_store(store: Store, lab: str, binary: str | None = None) -> StorePlan:
    """binary: where the store's server is on its host, when not where Debian's package puts it (sandbox hosts run
    Consul from the controller's engine cache)."""
    url = endpoint(store)
    if store.backend == "etcd":
        return StorePlan(
            backend="etcd", kind="service", argv=etcd_argv(store), start="", running="", stop="",
            health=f"ETCDCTL_API=3 etcdctl --endpoints {url} endpoint health",
            wipe=f"ETCDCTL_API=2 etcdctl --endpoints {url} rm --recursive /docker",
            needs=f"test -x {ETCD_BIN} && command -v etcdctl",
            needs_hint="install etcd there (Debian: apt-get install etcd-server etcd-client)")
    consul_bin = binary or CONSUL_BIN
    cli = shlex.join(["docker", "exec", CONSUL_CONTAINER, "consul"]) if store.image else shlex.quote(consul_bin)
    health = f"{cli} operator raft list-peers -http-addr={url} | grep -q leader"
    wipe = f"{cli} kv delete -http-addr={url} -recurse docker/"
    if store.image is None:
        return StorePlan(
            backend="consul", kind="service", argv=(consul_bin, *consul_agent_args(store), "-data-dir",
                                                    store.data_dir),
            start="", running="", stop="", health=health, wipe=wipe,
            needs=f"test -x {shlex.quote(consul_bin)} && echo {shlex.quote(consul_bin)}",
            needs_hint=f"install Debian 11's consul package ({consul_bin}; `labctl provision` does it), or set "
                       "`store.image: hashicorp/consul:1.15` to run it as a container")
    # The image's entrypoint adds -data-dir=/consul/data and -config-dir; data persists in the host's data_dir,
    # so a container left over (stopped, or from another image) is replaced, not restarted.
    run = ["docker", "run", "-d", "--name", CONSUL_CONTAINER, "--network", "host", "--restart", "unless-stopped",
           "--label", f"{STORE_LABEL}={lab}", "-v", f"{store.data_dir}:/consul/data", store.image,
           *consul_agent_args(store)]
    return StorePlan(
        backend="consul", kind="container", argv=tuple(run),
        start=f"docker rm -f {CONSUL_CONTAINER} >/dev/null 2>&1; {shlex.join(run)} >/dev/null",
        running=f"docker inspect -f '{{{{.State.Running}}}}' {CONSUL_CONTAINER} 2>/dev/null | grep -qx true",
        stop=f"docker rm -f {CONSUL_CONTAINER}", health=health, wipe=wipe,
        needs="docker version --format '{{.Server.Version}}'",
        needs_hint=f"the store host needs Docker to run {store.image}; install it or drop `store.image`")


# ---------------------------------------------------------------- the plane's pure half

# cluster-advertise from daemon.json ("eth1:2376" or "198.18.0.12:2376") as an address: the host's VTEP. (Docker's
# CLI 23 and later no longer knows the field in `docker info`, even against a 20.10 daemon.)
ADVERTISED = ("adv=$(sed -n 's/.*\"cluster-advertise\": *\"\\([^\"]*\\)\".*/\\1/p' /etc/docker/daemon.json "
              "2>/dev/null | head -n 1); h=${adv%:*}; case \"$h\" in '') ;; *[!0-9.]*) ip -o -4 addr show dev "
              "\"$h\" | awk '{print $4}' | cut -d/ -f1 | head -n 1;; *) echo \"$h\";; esac")


def kvstore_refusal(version: str, backend: str, consul_backend: bool) -> str | None:
    """Why an engine cannot use the cluster store of this backend (etcd or consul), or None when it can."""
    parsed = engine_version(version)
    if parsed is None:
        return "no Docker engine answers" if not version else f"engine version {version[:40]!r} is not understood"
    if not dialect.has_cluster_store(parsed[0]):
        return f"Docker Engine {version} has no cluster store ({dialect.CLUSTER_STORE_REMOVED})"
    if backend == "consul" and not consul_backend:
        return f"dockerd {version} is built without the Consul backend (Debian's docker.io has etcd only)"
    return None


class KvStorePlan(PlanePlan):
    traits = TRAITS
    status_script = ADVERTISED   # preflight needs no facts of its own: the engines' versions decide
    overlay_missing = ("it has not joined (check cluster-store and cluster-advertise in its daemon.json, then "
                       "`labctl up`)")

    def parse_facts(self, host: str, text: str) -> str:
        """The host's VTEP as cluster-advertise names it ("" when daemon.json has none)."""
        return text.strip().splitlines()[0][:64] if text.strip() else ""

    def refusals(self, store_backend: str | None, engines: list[Engine]) -> dict[str, str]:
        return {e.host: why for e in engines
                if (why := kvstore_refusal(e.version, store_backend or "etcd", e.consul_backend))}

    def problem(self, host: str, why: str) -> str:
        return (f"[{host}] overlay.control kvstore: {why}; use `overlay: {{control: swarm}}` (any engine since "
                "17.06, no dockerd restart) or Docker Engine 20.10 on this host")

    def auto_skip(self, store_backend: str | None, engines: list[Engine]) -> str | None:
        if store_backend is None:
            return "the playbook declares no store"
        return super().auto_skip(store_backend, engines)

    def auto_why(self, store_backend: str | None) -> str:
        return f"auto: the playbook has a {store_backend} store and every docker host's engine can use it"

    def evidence(self, pb: Playbook, facts: dict[str, Any]) -> int:
        return 1 if pb.store is not None and pb.control in ("auto", self.name) else 0

    def host_row(self, pb: Playbook, facts: Any) -> dict[str, Any]:
        return {"vtep": facts or None}

    def status_text(self, rows: dict[str, dict[str, Any]]) -> str:
        return "VTEPs (cluster-advertise): " + ", ".join(f"{h} {v.get('vtep') or '-'}" for h, v in rows.items())


PLANE = KvStorePlan()
