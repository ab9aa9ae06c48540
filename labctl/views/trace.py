"""`labctl trace`: the hops of one ping and what the captures saw."""

from __future__ import annotations

from rich.console import Console

from labctl.executors import trace as trace_exec
from labctl.views.console import make, table

KINDS = {"vxlan": "overlay on labctl's VXLAN devices", "macvlan": "macvlan on the underlay",
         "bridge": "a bridge on one host", "nat": "out of the host through NAT",
         "routed": "through the container's gateway"}


def print_trace(r: trace_exec.TraceResult, quiet: bool = False, console: Console | None = None) -> None:
    console = console or make()
    p = r.path
    what = f"overlay, VNI {p.vni}, control plane {r.plane or '?'}" if p.kind == "overlay" else KINDS[p.kind]
    if p.kind == "vxlan":
        what += f", VNI {p.vni}"
    console.print(f"trace {p.src} ({p.src_ip}) -> {p.dst} ({p.dst_ip}) on {p.network} ({what}): "
                  f"{r.received}/{r.sent} replies", soft_wrap=True)
    if quiet:
        return
    seen = {s.point.name: s for s in r.seen}
    t = table("#", "where", "interface", "MAC", "IP", "what happens", "captured")
    for i, h in enumerate(p.hops, 1):
        s = seen.get(h.capture)
        cap = (f"{s.requests} request(s), {s.replies} reply(ies)"
               + "".join(f"; VXLAN {o[0]} > {o[1]}:{o[2]} VNI {o[3]}" for o in s.outer)) if s else ""
        t.add_row(str(i), h.where, h.what, h.mac, h.ip, h.note, cap)
    console.print(t)
    for text in r.proof + p.notes:
        console.print(f"proof: {text}" if text in r.proof else text, soft_wrap=True)
    if r.pcaps:
        console.print("captures kept (tcpdump -r FILE, or Wireshark): " + ", ".join(r.pcaps), soft_wrap=True)
    if not r.ok:
        console.print("no reply: " + " ".join(r.ping_output.split())[-300:], soft_wrap=True)
