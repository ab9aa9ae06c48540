"""The lab as a picture: a topology built from what exists (`status`), marked against the playbook, and rendered
as Graphviz DOT (for SVG and PNG) or Mermaid (for Markdown). Pure: the CLI gathers the status and runs `dot`.

The picture follows the tutorials' diagrams: one box per host (underlay address, engine, roles) holding its
containers (addresses per network) and its host-local networks (bridges); networks that span hosts (overlay,
macvlan) sit between the boxes with their driver, subnet, VNI and control plane; the store sits in its host's box.
What the playbook has but the hosts do not is drawn dashed and red ("missing"); what the hosts have of the lab but
the playbook does not, dashed and orange ("extra"); a container that exists but does not run, grey.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from labctl.model.playbook import Playbook
from labctl.plan.status import LabStatus
from labctl.planes import PLANES, traits

SPANNING = ("overlay", "macvlan", "ipvlan")   # networks drawn between the host boxes
FORMATS = ("svg", "png", "dot", "mermaid")
COLOURS = {"ok": "black", "missing": "red3", "extra": "darkorange2", "stopped": "grey55"}


@dataclass
class Node:
    id: str
    label: list[str]          # lines
    mark: str = "ok"          # ok | missing | extra | stopped
    shape: str = "box"


@dataclass
class Box:
    id: str
    label: list[str]
    nodes: list[Node] = field(default_factory=list)
    mark: str = "ok"


@dataclass
class Topology:
    title: str
    boxes: list[Box]
    shared: list[Node]                             # networks spanning hosts
    edges: list[tuple[str, str, str, str]]         # (container node, network node, label, mark)


def node_id(*parts: str) -> str:
    return "n_" + "_".join(re.sub(r"[^A-Za-z0-9]", "_", p) for p in parts)


def build(status: LabStatus, pb: Playbook | None, underlay: dict[str, str]) -> Topology:
    """From `status.gather`'s result (plus each host's underlay address) and the playbook, when there is one."""
    plane = (status.control.plane if status.control else None) or (pb.control if pb is not None else None)
    have_nets = {n.name: n for n in status.networks}
    want_nets = {n.name: n for n in pb.networks} if pb is not None else {}
    have_ctrs = {c.name: c for c in status.containers}
    want_ctrs = {c.name: c for c in pb.containers} if pb is not None else {}
    store = status.store

    boxes: dict[str, Box] = {}
    for h in status.hosts:
        label = [h.name, underlay.get(h.name) or "address unknown",
                 f"Docker {h.engine}" if h.engine else (h.error or h.state or "no dockerd"),
                 "roles: " + ", ".join(h.roles)]
        boxes[h.name] = Box(node_id("host", h.name), label, mark="ok" if h.engine else "stopped")
    if store and store.host and store.host not in boxes:
        boxes[store.host] = Box(node_id("host", store.host), [store.host, underlay.get(store.host, ""),
                                                              "roles: store"])
    if store and store.host:
        state = {True: "running", False: "stopped", None: "unknown"}[store.running]
        boxes[store.host].nodes.append(Node(node_id("store"), [f"{store.backend} (cluster store)", store.url, state],
                                            "ok" if store.running else "stopped", "cylinder"))

    shared: list[Node] = []
    local: dict[str, list[str]] = {}           # network -> hosts where it is drawn inside the box
    for name in sorted(set(have_nets) | set(want_nets)):
        have, want = have_nets.get(name), want_nets.get(name)
        driver = (have.driver if have else None) or (want.driver if want is not None else "?")
        mark = "missing" if have is None else ("extra" if want is None and pb is not None else "ok")
        subnet = (have.subnet if have else None) or (str(want.subnet) if want is not None else "")
        vni = (have.vni if have else None) or (want.vni if want is not None else None)
        on_own_vxlan = bool(plane and plane in PLANES and traits(plane).own_vnis and want is not None and want.vni)
        label = [name, f"{'macvlan on VXLAN' if on_own_vxlan else driver} "
                       f"{subnet}".strip()]
        if vni:
            label.append(f"VNI {vni}")
        if driver == "overlay" or (want is not None and want.driver == "overlay"):
            label.append(f"control plane: {plane or '?'}")
        spans = driver in SPANNING or (want is not None and want.driver in SPANNING)
        if spans:
            shared.append(Node(node_id("net", name), label, mark, "ellipse"))
        else:
            hosts = list((have.hosts if have else None) or (want.hosts if want is not None else []))
            local[name] = hosts
            for host in hosts:
                if host in boxes:
                    boxes[host].nodes.append(Node(node_id("net", name, host), label, mark, "ellipse"))

    edges: list[tuple[str, str, str, str]] = []
    shared_ids = {n.id for n in shared}
    for name in sorted(set(have_ctrs) | set(want_ctrs)):
        have_c, want_c = have_ctrs.get(name), want_ctrs.get(name)
        host = (have_c.host if have_c else None) or (want_c.host if want_c is not None else "")
        if have_c is None:
            mark, state = "missing", "missing"
        elif want_c is None and pb is not None:
            mark, state = "extra", have_c.state or "?"
        else:
            state = have_c.state or "?"
            mark = "ok" if state == "running" else "stopped"
        addresses: dict[str, str | None] = dict(have_c.addresses if have_c else {})
        if want_c is not None:
            for a in want_c.networks:
                addresses.setdefault(a.network, None)
        label = [name] + [f"{net} {addr or '-'}" for net, addr in sorted(addresses.items())]
        if state != "running":
            label.append(state)
        cid = node_id("ctr", name)
        if host in boxes:
            boxes[host].nodes.append(Node(cid, label, mark))
        for net in addresses:
            if net not in have_nets and net not in want_nets and host in boxes:
                _docker_network(boxes[host], net, local)
        for net, addr in sorted(addresses.items()):
            target = node_id("net", net, host) if net in local else node_id("net", net)
            if net in local or target in shared_ids:
                edges.append((cid, target, addr or "", "missing" if addr is None else mark))
    title = f"lab {status.lab or (pb.name if pb else '?')}" + (f", control plane {plane}" if plane else "")
    return Topology(title, list(boxes.values()), shared, edges)


def _docker_network(box: Box, net: str, local: dict[str, list[str]]) -> None:
    """A network of Docker's own (the default bridge), in neither status nor playbook: drawn once per host using it."""
    hosts = local.setdefault(net, [])
    if box.label[0] not in hosts:
        hosts.append(box.label[0])
        box.nodes.append(Node(node_id("net", net, box.label[0]),
                              [net, "docker0 (default bridge)" if net == "bridge" else "Docker's"], "ok", "ellipse"))


# ----------------------------------------------------------------- DOT


def _dot_label(lines: list[str]) -> str:
    return "\\n".join(line.replace("\\", "\\\\").replace('"', '\\"') for line in lines if line)


def _dot_style(mark: str, sep: str = ", ", style: str = "") -> str:
    colour = COLOURS[mark]
    styles = [s for s in (style, "dashed" if mark in ("missing", "extra") else "") if s]
    attrs = [f'color="{colour}"', f'fontcolor="{colour}"'] + ([f'style="{",".join(styles)}"'] if styles else [])
    return sep.join(attrs)


def _dot_node(n: Node, indent: str) -> str:
    suffix = {"missing": ["(missing)"], "extra": ["(extra: not in the playbook)"]}.get(n.mark, [])
    return (f'{indent}{n.id} [label="{_dot_label(n.label + suffix)}", shape={n.shape}, {_dot_style(n.mark)}, '
            f'class="{n.mark}"];')


def to_dot(t: Topology) -> str:
    lines = ["digraph lab {", f'  label="{_dot_label([t.title])}"; labelloc=t; fontname="Helvetica";',
             '  node [fontname="Helvetica", fontsize=10]; edge [fontname="Helvetica", fontsize=9, dir=none];',
             "  compound=true; rankdir=TB;"]
    for b in t.boxes:
        lines.append(f"  subgraph cluster_{b.id} {{")
        lines.append(f'    label="{_dot_label(b.label)}"; {_dot_style(b.mark, "; ", "rounded")};')
        lines += [_dot_node(n, "    ") for n in b.nodes]
        lines.append("  }")
    lines += [_dot_node(n, "  ") for n in t.shared]
    for src, dst, label, mark in t.edges:
        lines.append(f'  {src} -> {dst} [label="{_dot_label([label])}", {_dot_style(mark)}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------- Mermaid


def _mm(lines: list[str]) -> str:
    return "<br/>".join(line.replace('"', "#quot;") for line in lines if line)


def to_mermaid(t: Topology) -> str:
    lines = ["---", f"title: {t.title}", "---", "flowchart TB"]
    for b in t.boxes:
        lines.append(f'  subgraph {b.id}["{_mm(b.label)}"]')
        for n in b.nodes:
            shape = ("([", "])") if n.shape == "ellipse" else ("[(", ")]") if n.shape == "cylinder" else ("[", "]")
            lines.append(f'    {n.id}{shape[0]}"{_mm(n.label)}"{shape[1]}:::{n.mark}')
        lines.append("  end")
    for n in t.shared:
        lines.append(f'  {n.id}(["{_mm(n.label)}"]):::{n.mark}')
    for src, dst, label, _ in t.edges:
        lines.append(f"  {src} ---|{label or '-'}| {dst}" if label else f"  {src} --- {dst}")
    lines += ["  classDef ok stroke:#333", "  classDef missing stroke:#c00,color:#c00,stroke-dasharray:5 5",
              "  classDef extra stroke:#e67300,color:#e67300,stroke-dasharray:5 5",
              "  classDef stopped stroke:#999,color:#999"]
    return "\n".join(lines) + "\n"
