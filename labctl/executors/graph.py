"""`labctl graph`: gather what exists (status plus each host's underlay address, one round trip per host) and
render the picture; SVG and PNG through Graphviz's `dot` on the controller."""

from __future__ import annotations

import shutil

from labctl.errors import PrerequisiteError
from labctl.executors import local
from labctl.executors.remote import Hosts
from labctl.executors.status import gather as gather_status
from labctl.executors.verify import underlay_facts
from labctl.model.inventory import Inventory, host_addresses
from labctl.model.playbook import Playbook
from labctl.views.graph import FORMATS, Topology, build, to_dot, to_mermaid

__all__ = ["FORMATS", "render", "topology"]


def topology(inv: Inventory, pb: Playbook | None, hosts: Hosts) -> Topology:
    underlay_fact = underlay_facts(inv)[0]
    status = gather_status(inv, pb, hosts, also=(underlay_fact,))
    underlay = {n: s[underlay_fact].address for n, s in status.answered().items()}
    known = host_addresses(inv)
    for name, address in known.items():   # the store host is no docker host: its address from the inventory
        if name not in underlay and address:
            underlay[name] = address
    return build(status, pb, underlay)


def render(t: Topology, fmt: str) -> bytes:
    if fmt == "mermaid":
        return to_mermaid(t).encode()
    dot = to_dot(t)
    if fmt == "dot":
        return dot.encode()
    if shutil.which("dot") is None:
        raise PrerequisiteError(f"--format {fmt} needs Graphviz's `dot` on this machine",
                                hint="apt-get install graphviz (make deps does), or use --format dot or mermaid")
    return local.run(["dot", f"-T{fmt}"], input=dot.encode(), timeout=60).stdout
