"""The lab's own Docker objects on a host, found by their labels: networks, containers, their addresses."""

from __future__ import annotations

import shlex

from fabric import Connection

from labctl.plan.lab import (
    LABEL,
    RECIPE_LABEL,
    SPEC_LABEL,
    Existing,
)
from labctl.plan.overlay import (
    parse_addresses,
)

NETWORK_FORMAT = f'{{{{.Name}}}}\t{{{{index .Labels "{SPEC_LABEL}"}}}}\t{{{{index .Labels "{RECIPE_LABEL}"}}}}'
CONTAINER_FORMAT = (f'{{{{.Name}}}}\t{{{{index .Config.Labels "{SPEC_LABEL}"}}}}\t{{{{.State.Running}}}}\t'
                    f'{{{{index .Config.Labels "{RECIPE_LABEL}"}}}}')


def lab_networks(conn: Connection, lab: str) -> dict[str, Existing]:
    out = conn.run(f"docker network ls -q --filter label={shlex.quote(LABEL + '=' + lab)} | "
                   f"xargs -r docker network inspect --format {shlex.quote(NETWORK_FORMAT)}", hide=True).stdout
    result = {}
    for line in str(out).splitlines():
        name, spec, recipe = (line.split("\t") + ["", ""])[:3]
        if name:
            result[name] = Existing(spec, recipe)
    return result


def lab_containers(conn: Connection, lab: str) -> dict[str, Existing]:
    out = conn.run(f"docker ps -aq --filter label={shlex.quote(LABEL + '=' + lab)} | "
                   f"xargs -r docker inspect --format {shlex.quote(CONTAINER_FORMAT)}", hide=True).stdout
    result = {}
    for line in str(out).splitlines():
        name, spec, running, recipe = (line.split("\t") + ["", "", ""])[:4]
        if name:
            result[name.lstrip("/")] = Existing(spec, recipe, running == "true")
    return result


ADDRESS_TEMPLATE = "{{.Name}}{{range $k, $v := .NetworkSettings.Networks}} {{$k}}={{$v.IPAddress}}{{end}}"


def lab_addresses(conn: Connection, lab: str) -> dict[str, dict[str, str]]:
    label = shlex.quote(f"{LABEL}={lab}")
    out = conn.run(f"docker ps -q --filter label={label} | xargs -r docker inspect -f {shlex.quote(ADDRESS_TEMPLATE)}",
                   hide=True).stdout
    return parse_addresses(str(out))


def remove_lab_containers(conn: Connection, lab: str) -> int:
    label = shlex.quote(f"{LABEL}={lab}")
    out = str(conn.run(f"docker ps -aq --filter label={label}", hide=True).stdout).split()
    if out:
        conn.run("docker rm -f " + " ".join(shlex.quote(i) for i in out), hide=True)
    return len(out)
