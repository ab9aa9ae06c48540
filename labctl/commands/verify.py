"""`labctl verify`: who reaches whom, against what the playbook implies; its JSON, JUnit and HTML files."""

from __future__ import annotations

import argparse
import json
import sys

from labctl.commands.common import load, write_file
from labctl.errors import LabctlError
from labctl.executors import graph as graph_exec
from labctl.executors import verify
from labctl.executors.remote import Hosts
from labctl.model.inventory import Inventory
from labctl.model.playbook import Playbook, load_playbook
from labctl.providers import registry
from labctl.ui import Progress
from labctl.views import html
from labctl.views import verify_report as verdict
from labctl.views.verdict import print_verdict


def cmd_verify(args: argparse.Namespace, progress: Progress) -> int:
    inv = load(args)
    pb = load_playbook(args.playbook, inv)
    with Hosts(registry.endpoints(inv)) as hosts:
        result = verify.verify(inv, pb, hosts, progress, sampled=args.sample, probe=args.probe)
        if result.causes_hidden:
            progress.note("likely causes hidden: the instructor's class file says `causes: hide` for the fault on "
                          "these hosts (until `break --undo`)")
        if args.causes == "hide" or result.causes_hidden:
            hide_causes(result)
        probe = {"modes": result.probe_modes, "notes": result.probe_notes, "reprobed": result.reprobed}
        if args.html:
            write_file(args.html, verdict_page(inv, pb, hosts, result, probe, progress))
    if args.json:
        data = verdict.to_json(pb.name, result.results, result.duration_s, probe)
        if args.json == "-":
            json.dump(data, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:   # streamed: at 16 x 20 the text alone would be some 100 MB held at once
            try:
                with open(args.json, "w", encoding="utf-8") as fh:
                    json.dump(data, fh, indent=2)
                    fh.write("\n")
            except OSError as exc:
                raise LabctlError(f"cannot write {args.json}: {exc.strerror}") from None
    if args.junit:
        write_file(args.junit, verdict.to_junit(pb.name, result.results, result.duration_s))
    if args.json != "-":
        print_verdict(result, args.quiet)
    return 0 if result.ok else 1


def hide_causes(result: verify.Verdict) -> None:
    """verify --causes hide: what failed, not why (a break-and-fix class finds the cause itself); in the text, the
    JSON, the JUnit file and the page alike."""
    for r in result.results:
        r.cause = ""


def verdict_page(inv: Inventory, pb: Playbook, hosts: Hosts, result: verify.Verdict, probe: dict,
                 progress: Progress) -> str:
    """verify --html: the verdict plus the topology as it is now (an SVG when Graphviz is installed)."""
    progress.step("all", "topology for the HTML page")
    svg, note = None, ""
    try:
        svg = graph_exec.render(graph_exec.topology(inv, pb, hosts), "svg").decode()
    except LabctlError as exc:
        note = f"no picture: {exc.message}" + (f" ({exc.hint})" if exc.hint else "")
    return html.to_html(result.lab, result.results, result.duration_s, probe, svg, note)
