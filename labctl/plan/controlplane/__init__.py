"""Which control plane carries a lab's overlay networks on these hosts (pure: facts in, decision out).

- kvstore: the classic multi-host overlay; every dockerd gets `cluster-store`/`cluster-advertise` and a restart.
  Docker removed that store in Engine 23.0, and Debian's docker.io 20.10 has no Consul backend.
- swarm: Docker's own control plane (swarm mode, Engine 17.06 and later for attachable overlays with standalone
  containers); no daemon.json change and no restart. The same VXLAN data plane (UDP 4789, a VNI per network).

`auto` takes kvstore when the playbook declares a store and every docker host's engine has the backend it needs,
otherwise swarm, and says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from labctl.model.playbook import Playbook
from labctl.plan.controlplane.vxlan import as_macvlan

CONTROLS = ("auto", "kvstore", "swarm", "vxlan")
KVSTORE_LAST_MAJOR = 22      # Engine 23.0 removed cluster-store (deprecated since 20.10)
SWARM_ATTACHABLE = (17, 6)   # `docker network create --attachable` (standalone containers on a swarm overlay)


def engine_version(text: str) -> tuple[int, int] | None:
    """(major, minor) of an engine version as `docker version` prints it: "20.10.24+dfsg1", "28.2.2", "17.06.2-ce",
    "1.13.1", "24.0.7-0ubuntu4"; None when there is no engine or the text is not a version."""
    match = re.match(r"^\s*(\d{1,4})\.(\d{1,4})(?:\.|$|[-+~])", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def kvstore_refusal(version: str, backend: str, consul_backend: bool) -> str | None:
    """Why an engine cannot use the cluster store of this backend (etcd or consul), or None when it can."""
    parsed = engine_version(version)
    if parsed is None:
        return "no Docker engine answers" if not version else f"engine version {version[:40]!r} is not understood"
    if parsed[0] > KVSTORE_LAST_MAJOR:
        return f"Docker Engine {version} has no cluster store (removed in 23.0)"
    if backend == "consul" and not consul_backend:
        return f"dockerd {version} is built without the Consul backend (Debian's docker.io has etcd only)"
    return None


def swarm_refusal(version: str) -> str | None:
    parsed = engine_version(version)
    if parsed is None:
        return "no Docker engine answers" if not version else f"engine version {version[:40]!r} is not understood"
    if parsed < SWARM_ATTACHABLE:
        return f"Docker Engine {version} predates attachable swarm overlays (17.06)"
    return None


@dataclass(frozen=True)
class Engine:
    host: str
    version: str
    consul_backend: bool = False


@dataclass
class Decision:
    control: str                      # kvstore | swarm
    why: str                          # one line for validate and the first progress line
    problems: list[str] = field(default_factory=list)  # refusals (exit 2) when the choice cannot be taken


def decide(requested: str, store_backend: str | None, engines: list[Engine]) -> Decision:
    """The control plane for these engines. requested: auto | kvstore | swarm; store_backend: the playbook's store
    backend (None when it declares none)."""
    kv_no = {e.host: why for e in engines
             if (why := kvstore_refusal(e.version, store_backend or "etcd", e.consul_backend))}
    swarm_no = {e.host: why for e in engines if (why := swarm_refusal(e.version))}
    if requested == "kvstore" or (requested == "auto" and store_backend is not None and not kv_no):
        if requested == "auto":
            why = f"auto: the playbook has a {store_backend} store and every docker host's engine can use it"
        else:
            why = "requested in the playbook"
        problems = [f"[{h}] overlay.control kvstore: {w}; use `overlay: {{control: swarm}}` (any engine since "
                    "17.06, no dockerd restart) or Docker Engine 20.10 on this host" for h, w in kv_no.items()]
        return Decision("kvstore", why, problems)
    if requested == "vxlan":
        return Decision("vxlan", "requested in the playbook (labctl's own VXLAN devices; any engine)",
                        [f"[{e.host}] overlay.control vxlan: no Docker engine answers"
                         for e in engines if not e.version])
    if requested == "swarm":
        why = "requested in the playbook"
    elif store_backend is None:
        why = "auto: the playbook declares no store"
    else:
        why = "auto: " + "; ".join(f"{h}: {w}" for h, w in sorted(kv_no.items()))
    problems = [f"[{h}] overlay.control swarm: {w}; upgrade Docker on this host" for h, w in swarm_no.items()]
    return Decision("swarm", why, problems)


def needs_decision(pb: Playbook) -> bool:
    return pb.store is not None or any(n.driver == "overlay" for n in pb.networks)


def effective(pb: Playbook, control: str) -> Playbook:
    """The playbook as the chosen control plane runs it: under swarm there is no store (auto may have had one
    declared) and the overlays are attachable."""
    if control == "vxlan":  # Docker sees each overlay as macvlan on labctl's VXLAN device (plan.controlplane.vxlan)
        nets = tuple(as_macvlan(n) if n.driver == "overlay" and n.vni is not None else n for n in pb.networks)
        return replace(pb, store=None, control="vxlan", networks=nets)
    if control != "swarm":
        return replace(pb, control=control)
    nets = tuple(replace(n, attachable=True) if n.driver == "overlay" else n for n in pb.networks)
    return replace(pb, store=None, control="swarm", networks=nets)
