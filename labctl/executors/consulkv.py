"""Consul's HTTP API from the controller (py-consul, python-consul's maintained continuation), over an SSH port
forward on the store host's own connection (Fabric's `forward_local`): it works wherever SSH does, also when the
controller has no route to the underlay.

What labctl asks Consul: whether a leader is elected (health), what Docker 20.10's libkv wrote under `docker/`
(each engine registers itself under `docker/nodes/<ip>:<port>`; overlay networks live under
`docker/network/v1.0/network/<id>`), and, at `down`, the removal of exactly that prefix.

etcd is asked through `etcdctl` on the store host instead (one SSH command, no extra client): Docker 20.10 speaks
etcd's v2 API, for which no maintained Python client exists.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fabric import Connection

from labctl.errors import LabctlError

if TYPE_CHECKING:   # imported where used: py-consul brings requests, 0.2 s of start-up every labctl run would pay
    import consul

NODES_PREFIX = "docker/nodes/"
NETWORKS_PREFIX = "docker/network/v1.0/network/"
TIMEOUT = 5


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise LabctlError(f"the SSH forward to Consul (127.0.0.1:{port}) did not open within {timeout:g}s")


@contextlib.contextmanager
def client(conn: Connection, address: str, port: int) -> Iterator[consul.Consul]:
    """A py-consul client whose requests travel through the store host's SSH connection to address:port there."""
    import consul

    local = _free_port()
    with conn.forward_local(local, remote_port=port, remote_host=address, local_host="127.0.0.1"):
        _wait_listening(local)   # Fabric binds the local end in a thread of its own: a request may come first
        yield consul.Consul(host="127.0.0.1", port=local, connections_timeout=TIMEOUT)


@dataclass
class ConsulState:
    """What the store holds of the lab (for status and verify)."""

    leader: str = ""                                   # "198.18.0.11:8300"; "" while none is elected
    nodes: list[str] = field(default_factory=list)     # "198.18.0.12:2376": engines registered by cluster-advertise
    networks: dict[str, str] = field(default_factory=dict)  # network ID -> name (overlays Docker keeps here)
    keys: int = 0                                      # keys under docker/
    error: str = ""                                    # why Consul could not be asked

    def as_dict(self) -> dict:
        return {"leader": self.leader, "nodes": self.nodes, "networks": self.networks, "keys": self.keys,
                **({"error": self.error} if self.error else {})}


def leader(c: consul.Consul) -> str:
    return str(c.status.leader() or "")


def read_state(c: consul.Consul) -> ConsulState:
    state = ConsulState(leader=leader(c))
    _, keys = c.kv.get("docker/", keys=True)
    keys = keys or []
    state.keys = len(keys)
    state.nodes = sorted(k[len(NODES_PREFIX):].strip("/") for k in keys
                         if k.startswith(NODES_PREFIX) and k[len(NODES_PREFIX):].strip("/"))
    for key in keys:
        rest = key[len(NETWORKS_PREFIX):] if key.startswith(NETWORKS_PREFIX) else ""
        if rest and "/" not in rest.strip("/"):
            _, item = c.kv.get(key)
            state.networks[rest.strip("/")] = network_name(item["Value"] if item else None)
    return state


def network_name(value: bytes | None) -> str:
    """The name in libnetwork's JSON record of a network (the key holds it, not the name)."""
    try:
        return str(json.loads(value or b"{}").get("name", ""))
    except ValueError:
        return ""


def state(conn: Connection, address: str, port: int) -> ConsulState:
    try:
        with client(conn, address, port) as c:
            return read_state(c)
    except Exception as exc:  # noqa: BLE001 - reported as the store's state, never a traceback
        return ConsulState(error=f"{type(exc).__name__}: {str(exc)[:200]}")


def wait_leader(conn: Connection, address: str, port: int, timeout: float) -> str:
    """The leader's address once one is elected; raises with the last error after timeout seconds."""
    deadline = time.monotonic() + timeout
    # Until the agent listens, every forwarded connection is refused, and Fabric re-raises those refusals when the
    # forward closes: wait for the port on the store host first (one SSH command).
    probe = f"until timeout 1 bash -c '</dev/tcp/{address}/{int(port)}' 2>/dev/null; do sleep 0.1; done"
    if not conn.run(f"timeout {int(timeout)} bash -c {shlex.quote(probe)}", hide=True, warn=True).ok:
        raise LabctlError(f"Consul does not listen on {address}:{port} after {timeout:g}s")
    last = ""
    with client(conn, address, port) as c:
        while time.monotonic() < deadline:
            try:
                found = leader(c)
                if found:
                    return found
                last = "no leader elected yet"
            except Exception as exc:  # noqa: BLE001 - still starting: connection refused, 500 No cluster leader
                last = f"{type(exc).__name__}: {str(exc)[:160]}"
            time.sleep(0.2)
    raise LabctlError(f"Consul at {address}:{port} has no leader after {timeout:g}s ({last})")


def wipe(conn: Connection, address: str, port: int) -> bool:
    """Remove everything Docker wrote (the prefix docker/); False when there was nothing."""
    with client(conn, address, port) as c:
        _, keys = c.kv.get("docker/", keys=True)
        if not keys:
            return False
        c.kv.delete("docker/", recurse=True)
        _, left = c.kv.get("docker/", keys=True)
        if left:
            raise LabctlError(f"Consul still holds {len(left)} keys under docker/ after their removal")
        return True
