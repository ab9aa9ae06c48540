"""Facts of Docker's own overlay networks read on a host, beside what `docker network inspect` says."""

from __future__ import annotations

import re

from fabric import Connection

from labctl.plan.overlay import overlay_ns


def overlay_vni(conn: Connection, network: str) -> int | None:
    """The VXLAN ID of an overlay network, read from the vxlan device in Docker's namespace for it
    (/run/docker/netns/<epoch>-<first 10 chars of the network ID>); None until a container on this host joins it."""
    script = f'{overlay_ns(network)}; [ -n "$ns" ] && nsenter --net="$ns" ip -d -o link show type vxlan'
    res = conn.run(script, hide=True, warn=True)
    match = re.search(r"vxlan id (\d+)", str(res.stdout)) if res.ok else None
    return int(match.group(1)) if match else None
