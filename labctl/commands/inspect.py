"""`labctl status`, `labctl graph` and `labctl trace`: what exists now, drawn, and one ping's path."""

from __future__ import annotations

import argparse
import json
import sys

from labctl.commands.common import load
from labctl.errors import LabctlError
from labctl.executors import graph as graph_exec
from labctl.executors import status
from labctl.executors import trace as trace_exec
from labctl.executors.remote import Hosts
from labctl.model.playbook import load_playbook
from labctl.providers import registry
from labctl.ui import Progress
from labctl.views.lab import print_status
from labctl.views.trace import print_trace


def cmd_graph(args: argparse.Namespace, progress: Progress) -> int:
    inv = load(args)
    pb = load_playbook(args.playbook, inv) if args.playbook else None
    with Hosts(registry.endpoints(inv)) as hosts:
        progress.step("all", "gathering hosts, networks and containers")
        topo = graph_exec.topology(inv, pb, hosts)
    data = graph_exec.render(topo, args.format)
    out = args.output or ("-" if args.format in ("dot", "mermaid") else f"{pb.name if pb else inv.name}.{args.format}")
    if out == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        try:
            with open(out, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            raise LabctlError(f"cannot write {out}: {exc.strerror}") from None
        print(f"graph {topo.title}: {out} ({args.format}, {len(data)} bytes)")
    return 0


def cmd_trace(args: argparse.Namespace, progress: Progress) -> int:
    inv = load(args)
    pb = load_playbook(args.playbook, inv) if args.playbook else None
    with Hosts(registry.endpoints(inv)) as hosts:
        result = trace_exec.trace(inv, pb, hosts, progress, args.src, args.dst, args.network, args.pcap, args.count)
    if args.json:
        print(json.dumps(trace_json(result), indent=2))
    else:
        print_trace(result, args.quiet)
    return 0 if result.ok else 1


def trace_json(r: trace_exec.TraceResult) -> dict:
    p = r.path
    return {"src": p.src, "dst": p.dst, "network": p.network, "kind": p.kind, "vni": p.vni, "control_plane": r.plane,
            "src_ip": p.src_ip, "dst_ip": p.dst_ip, "vteps": list(p.vteps) if p.vteps else None,
            "sent": r.sent, "received": r.received, "ok": r.ok,
            "hops": [vars(h) for h in p.hops],
            "captures": [{"name": s.point.name, "host": s.point.host, "interface": s.point.iface,
                          "in_container": bool(s.point.pid), "filter": s.point.bpf, "echo_requests": s.requests,
                          "echo_replies": s.replies,
                          "vxlan": [{"src": o[0], "dst": o[1], "port": o[2], "vni": o[3]} for o in s.outer]}
                         for s in r.seen],
            "proof": r.proof, "pcaps": r.pcaps, "notes": p.notes}


def cmd_status(args: argparse.Namespace, progress: Progress) -> int:
    inv = load(args)
    pb = load_playbook(args.playbook, inv) if args.playbook else None
    with Hosts(registry.endpoints(inv)) as hosts:
        result = status.gather(inv, pb, hosts, store_contents=True)
    if args.json:
        print(json.dumps(result.as_json(), indent=2))
    else:
        print_status(result, args.quiet)
    return 1 if result.not_usable else 0
