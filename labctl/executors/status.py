"""`labctl status`: what of the lab exists on each host right now (networks, VNIs, containers, addresses)."""

from __future__ import annotations

from typing import Any

from fabric import Connection

from labctl.executors.remote import Hosts, failure_from
from labctl.executors.store import store_runner
from labctl.model.inventory import Inventory
from labctl.model.playbook import Playbook
from labctl.plan.controlplane import needs_decision
from labctl.plan.lab import LABEL
from labctl.plan.objects import parse_objects, query
from labctl.plan.overlay import parse_vnis, vnis_script
from labctl.planes.registry import plan_halves
from labctl.providers import registry

PART = "--labctl-status-part--"


def host_status(conn: Connection, label_filter: str, vnis: bool = True, extra: str = "",
                control: str = "") -> dict[str, Any]:
    """One round trip: the host's networks and containers, the VNIs of its overlays (when `vnis`), the control
    planes' status facts (`control`, the control_query) and `extra`, a command whose output comes back too."""
    parts = [vnis_script(label_filter) if vnis else "true", control or "true", extra or "true"]
    data = parse_host_status(str(conn.run(query(label_filter, f"; echo {PART}; ".join(parts)), hide=True).stdout))
    vni_text, control_text, extra_text = (data["extra"].split(PART + "\n", 2) + ["", ""])[:3]
    by_id = parse_vnis(vni_text)
    found = {n["Name"]: by_id[n["Id"]] for n in data["networks"] if n.get("Id") in by_id}
    halves = plan_halves().values()
    for n in data["networks"]:
        for half in halves:   # a plane that carries the network on its own VXLAN devices
            vni = half.vni_of(n)
            if vni is not None:
                found[n["Name"]] = vni
    data["vnis"] = found
    data["control"], data["extra"] = control_text, extra_text
    return data


def parse_host_status(out: str) -> dict[str, Any]:
    """plan.objects.query's output as status's dict: the engine's version, whether a dockerd restart is pending,
    the networks and containers as Docker shows them, and the extra command's output."""
    o = parse_objects(out)
    return {"engine": o.engine, "pending": o.pending, "networks": list(o.networks.values()),
            "containers": list(o.containers.values()), "vnis": {}, "extra": o.extra}


def gather(inv: Inventory, pb: Playbook | None, hosts: Hosts, vnis: bool = True, extra: str = "",
           store_contents: bool = False) -> dict[str, Any]:
    """Status of every docker host and of the store, all at once; a host that cannot be asked is reported with its
    error, not dropped. verify passes vnis=False (it needs no VNI) and its underlay query as `extra`: one round
    trip per host for all it needs to know before probing. `extra` outputs come back under "extra"."""
    label_filter = f"{LABEL}={pb.name}" if pb else LABEL
    names = [h.name for h in inv.docker_hosts]
    store_host = pb.store.host if pb is not None and pb.store is not None else None
    raw: dict[str, dict[str, Any]] = {}
    store: dict[str, Any] = {}
    control = control_query() if pb is not None and needs_decision(pb) else ""

    def one(name: str, conn: Connection) -> None:
        if name in names:
            try:
                raw[name] = host_status(conn, label_filter, vnis, extra, control)
            except Exception as exc:  # noqa: BLE001 - status reports every host, reachable or not
                raw[name] = {"error": str(failure_from(name, exc))}
        if name == store_host and pb is not None:
            store.update(store_status(inv, pb, hosts, store_contents))

    hosts.each(one, names + ([store_host] if store_host and store_host not in names else []), step="status")
    result = summarize(inv, pb, raw)
    if control and pb is not None:
        result["control"] = control_status(pb, {n: r["control"] for n, r in raw.items() if "error" not in r})
    if extra:
        result["extra"] = {n: r.get("extra", "") for n, r in raw.items() if "error" not in r}
    if store_host is not None:
        result["store"] = store
    return result


CONTROL_SEP = "----labctl-control----"


def control_query() -> str:
    """Every plane's facts_script, in one round trip."""
    return f"; echo {CONTROL_SEP}; ".join(p.status_query or "true" for p in plan_halves().values())


def control_status(pb: Playbook, answers: dict[str, str]) -> dict[str, Any]:
    """The overlay's control plane as the hosts show it (answers: each host's output of control_query, gathered in
    status's one round trip): the plane with the surest
    evidence (its own objects for this lab on the hosts, then what the playbook implies), and per host what each
    plane shown always (swarm: the host's role) and the active plane report, its VTEP address among them."""
    halves = plan_halves()
    raw = {n: (text.split(CONTROL_SEP + "\n") + [""] * len(halves))[:len(halves)] for n, text in answers.items()}
    facts = {p: {n: half.parse_facts(n, r[i] + "\n") for n, r in raw.items()}
             for i, (p, half) in enumerate(halves.items())}
    ranked = sorted(((half.evidence(pb, facts[p]), -i, p) for i, (p, half) in enumerate(halves.items())),
                    reverse=True)
    plane = ranked[0][2] if ranked and ranked[0][0] > 0 else None
    rows: dict[str, dict[str, Any]] = {n: {} for n in raw}
    for n in raw:
        for p, half in halves.items():
            if half.shown_always:
                rows[n].update(half.host_row(pb, facts[p][n]))
        if plane is not None:
            rows[n].update(halves[plane].host_row(pb, facts[plane][n]))
    return {"plane": plane, "requested": pb.control, "hosts": rows}


def store_status(inv: Inventory, pb: Playbook, hosts: Hosts, contents: bool = False) -> dict[str, Any]:
    """contents: also what Docker wrote into the store (Consul: over an SSH forward; `labctl status` asks for it,
    verify reads it only when it diagnoses a failure)."""
    assert pb.store is not None
    entry: dict[str, Any] = {"backend": pb.store.backend, "host": pb.store.host, "url": pb.store.url}
    try:
        runner = store_runner(inv, pb, registry.service_manager(inv))
        conn = hosts.conn(pb.store.host)
        entry["running"] = runner.is_running(conn)
        entry["error"] = None
        found = runner.contents(conn) if entry["running"] and contents else None
        if found is not None:   # Consul, through its API: what Docker wrote there
            entry["contents"] = found.as_dict()
            entry["registered"] = found.nodes
            entry["overlays"] = sorted(found.networks.values())
    except Exception as exc:  # noqa: BLE001
        entry["running"], entry["error"] = None, str(failure_from(pb.store.host, exc))
    return entry


def summarize(inv: Inventory, pb: Playbook | None, raw: dict[str, dict[str, Any]]) -> dict[str, Any]:
    host_rows = []
    networks: dict[str, dict[str, Any]] = {}
    containers = []
    for h in inv.docker_hosts:
        data = raw.get(h.name, {})
        host_rows.append({"name": h.name, "roles": list(h.roles), "engine": data.get("engine"),
                          "error": data.get("error"), "state": engine_state(data)})
        for n in data.get("networks", []):
            cfg = (n.get("IPAM", {}).get("Config") or [{}])[0]
            entry = networks.setdefault(n["Name"], {
                "name": n["Name"], "lab": (n.get("Labels") or {}).get(LABEL), "driver": n.get("Driver"),
                "scope": n.get("Scope"), "subnet": cfg.get("Subnet"), "gateway": cfg.get("Gateway") or None,
                "ip_ranges": {}, "hosts": [], "vni": None})
            entry["hosts"].append(h.name)
            if cfg.get("IPRange"):
                entry["ip_ranges"][h.name] = cfg["IPRange"]
            if entry["vni"] is None and data.get("vnis", {}).get(n["Name"]) is not None:
                entry["vni"] = data["vnis"][n["Name"]]
        for c in data.get("containers", []):
            nets = c.get("NetworkSettings", {}).get("Networks") or {}
            containers.append({
                "name": c["Name"].lstrip("/"), "host": h.name, "lab": (c["Config"].get("Labels") or {}).get(LABEL),
                "image": c["Config"].get("Image"), "state": c["State"].get("Status"),
                "network_mode": c.get("HostConfig", {}).get("NetworkMode"),
                "addresses": {k: v.get("IPAddress") or None for k, v in sorted(nets.items())}})
    result: dict[str, Any] = {"lab": pb.name if pb else None, "inventory": inv.source,
                              "hosts": host_rows, "networks": sorted(networks.values(), key=lambda n: n["name"]),
                              "containers": sorted(containers, key=lambda c: (c["host"], c["name"]))}
    if pb is not None:
        result["missing"] = missing(pb, result)
        result["extra"] = extra(pb, result)
    return result


def engine_state(data: dict[str, Any]) -> str | None:
    """Why the host's dockerd is not usable, or None when it is (or the host could not be asked: see error)."""
    if data.get("error"):
        return None
    if data.get("pending"):
        return ("dockerd restart pending: a run was interrupted while restarting it; `labctl up` or `labctl down` "
                "finishes it")
    if not data.get("engine"):
        return "dockerd not running"
    return None


def extra(pb: Playbook, status: dict[str, Any]) -> list[str]:
    """The lab's objects that the playbook no longer has: what `up` removes."""
    wanted_ctrs = {(c.host, c.name) for c in pb.containers}
    result = []
    for n in status["networks"]:
        net = next((x for x in pb.networks if x.name == n["name"]), None)
        hosts = [h for h in n["hosts"] if net is None or (net.driver != "overlay" and h not in net.hosts)]
        if n["lab"] == pb.name and hosts:
            result.append(f"networks.{n['name']}: on {', '.join(hosts)}, not in the playbook (`up` removes it)")
    for c in status["containers"]:
        if c["lab"] == pb.name and (c["host"], c["name"]) not in wanted_ctrs:
            result.append(f"containers.{c['name']}: on {c['host']}, not in the playbook (`up` removes it)")
    return result


def missing(pb: Playbook, status: dict[str, Any]) -> list[str]:
    """Playbook entries that do not exist or do not run: what `up` would still do."""
    have_nets = {n["name"]: set(n["hosts"]) for n in status["networks"]}
    have_ctrs = {(c["host"], c["name"]): c["state"] for c in status["containers"]}
    result = []
    for net in pb.networks:
        absent = [h for h in net.hosts if h not in have_nets.get(net.name, set())]
        if absent:
            result.append(f"networks.{net.name}: not on {', '.join(absent)}")
    for c in pb.containers:
        state = have_ctrs.get((c.host, c.name))
        if state != "running":
            result.append(f"containers.{c.name}: {state or 'absent'} on {c.host}")
    return result
