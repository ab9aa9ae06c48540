"""Facts of a host's Docker engine: its version and ID, its networks and containers as `docker ... inspect` shows
them, overlay VNIs, images, and which labs own what (pure).

Where engines differ, the difference is handled here or in `labctl.facts.dialect`, not by the readers: every
command below works the same on Engine 20.10 and 26 (both print one JSON object per line with `--format
'{{json .}}'`; `docker info --format '{{.ID}}'` is the engine ID on both, derived from /etc/docker/key.json on 20.10
and /var/lib/docker/engine-id from 23 on)."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from labctl.facts import Fact, fact
from labctl.plan.lab import LABEL


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0].strip() if text.strip() else ""


def _json_lines(text: str) -> list[dict[str, Any]]:
    """One JSON object per line; a line that is not one (a CLI warning) is skipped."""
    found = []
    for line in text.splitlines():
        if line.strip().startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                found.append(obj)
    return found


def _filter(label_filter: str) -> str:
    return f" --filter {shlex.quote(f'label={label_filter}')}" if label_filter else ""


ENGINE_VERSION: Fact[str] = fact("engine.version", "docker version --format '{{.Server.Version}}' 2>/dev/null",
                                 _first_line)
ENGINE_ID: Fact[str] = fact("engine.id", "docker info --format '{{.ID}}' 2>/dev/null", _first_line)
CONSUL_BACKEND: Fact[bool] = fact(
    "engine.consul-backend", "grep -c -a 'docker/libkv/store/consul' \"$(command -v dockerd)\" 2>/dev/null",
    lambda t: _first_line(t).isdigit() and int(_first_line(t)) > 0)
IMAGES: Fact[frozenset[str]] = fact("engine.images", "docker image ls --format '{{.Repository}}:{{.Tag}}' 2>/dev/null",
                                    lambda t: frozenset(t.split()))


def parse_network_owners(text: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """network -> (the lab whose label it has, "" none; its subnets)."""
    result = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        net, owner, subnets = (line.split("\t", 2) + ["", ""])[:3]
        result[net] = (owner, tuple(subnets.split()))
    return result


def parse_container_owners(text: str) -> dict[str, str]:
    """container -> the lab whose label it has ("" none)."""
    result = {}
    for line in text.splitlines():
        if line.strip():
            name, _, owner = line.partition("\t")
            result[name] = owner
    return result


NETWORK_OWNERS = fact(
    "engine.network-owners",
    "docker network ls -q 2>/dev/null | xargs -r docker network inspect --format "
    f"'{{{{.Name}}}}\t{{{{index .Labels \"{LABEL}\"}}}}\t{{{{range .IPAM.Config}}}}{{{{.Subnet}}}} {{{{end}}}}' "
    "2>/dev/null", parse_network_owners)
CONTAINER_OWNERS = fact("engine.container-owners",
                        f"docker ps -a --format '{{{{.Names}}}}\t{{{{.Label \"{LABEL}\"}}}}' 2>/dev/null",
                        parse_container_owners)


@dataclass(frozen=True)
class EngineObjects:
    """What `objects()` read: the engine's version ("" when dockerd does not answer), and name -> the JSON that
    `docker network inspect` (without the attached containers) / `docker inspect` show."""

    version: str
    networks: dict[str, dict[str, Any]]
    containers: dict[str, dict[str, Any]]


def parse_objects(text: str) -> EngineObjects:
    """Lines `V VERSION`, `N JSON` and `C JSON` (engine_reader's, or the CLI's with the same prefixes)."""
    version = next((line[2:].strip() for line in text.splitlines() if line.startswith("V ")), "")
    by_kind: dict[str, list[str]] = {"N": [], "C": []}
    for line in text.splitlines():
        if line[:2] in ("N ", "C "):
            by_kind[line[0]].append(line[2:])
    networks = {n["Name"]: _without_endpoints(n) for n in _json_lines("\n".join(by_kind["N"])) if "Name" in n}
    containers = {str(c["Name"]).lstrip("/"): c for c in _json_lines("\n".join(by_kind["C"])) if "Name" in c}
    return EngineObjects(version, networks, containers)


def _without_endpoints(network: dict[str, Any]) -> dict[str, Any]:
    """A network without its attached containers (and swarm's peers and services): the reader takes networks from
    their list, which has none of these, and no reader of labctl's needs them (a container's own inspect says
    where it is attached). Dropped from the CLI's output as well, so that both ways give the same."""
    return {k: v for k, v in network.items() if k not in ("Containers", "Peers", "Services")}


@cache
def _reader() -> str:
    return (Path(__file__).with_name("engine_reader.py")).read_text(encoding="utf-8")


# The reader speaks to the default socket only: where DOCKER_HOST, DOCKER_CONTEXT or a current context could send
# the CLI elsewhere, the CLI itself is asked (as it is where python3 is missing or the reader exits 3).
_DEFAULT_ENDPOINT = ('[ -z "${DOCKER_HOST:-}${DOCKER_CONTEXT:-}" ] && [ -S /var/run/docker.sock ] && '
                     '! grep -qs currentContext "${HOME:-/root}/.docker/config.json" && command -v python3 >/dev/null')


def objects(label_filter: str = "") -> Fact[EngineObjects]:
    """The engine's version, networks and containers (label_filter "": every one of the host), read by
    engine_reader.py from the Engine API in one process, or by the Docker CLI where the reader cannot be used."""
    f = _filter(label_filter)
    cli = ("v=$(docker version --format '{{.Server.Version}}' 2>/dev/null) && echo \"V $v\"; "
           f"docker network ls -q{f} 2>/dev/null | xargs -r docker network inspect --format 'N {{{{json .}}}}' "
           f"2>/dev/null; docker ps -aq{f} 2>/dev/null | xargs -r docker inspect --format 'C {{{{json .}}}}' "
           "2>/dev/null")
    return fact("engine.objects", f"if {_DEFAULT_ENDPOINT}; then {reader_command(label_filter)}; rc=$?; "
                                  f"else rc=3; fi; if [ $rc = 3 ]; then {cli}; fi", parse_objects)


def reader_command(label_filter: str = "") -> str:
    """engine_reader.py run on the host (exit 3: it cannot be used there)."""
    return f"python3 -I -S -c {shlex.quote(_reader())}{' ' + shlex.quote(label_filter) if label_filter else ''}"


def parse_vnis(text: str) -> dict[str, int]:
    """network ID -> VNI, from lines `NETWORK-ID VNI`."""
    found = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            found[parts[0]] = int(parts[1])
    return found


def vnis(label_filter: str = "") -> Fact[dict[str, int]]:
    """network ID -> VXLAN ID of every overlay network (with this label, if given) whose namespace exists on this
    host (a local container joined it), read from the vxlan device inside that namespace."""
    return fact("engine.vnis",
                f"for n in $(docker network ls -q --no-trunc --filter driver=overlay{_filter(label_filter)} "
                "2>/dev/null); do "
                'ns=$(ls -d /run/docker/netns/*-"$(echo "$n" | cut -c1-10)" 2>/dev/null | tail -n 1); '
                '[ -n "$ns" ] || continue; v=$(nsenter --net="$ns" ip -d -o link show type vxlan 2>/dev/null | '
                "sed -n 's/.*vxlan id \\([0-9]*\\).*/\\1/p' | head -n 1); [ -n \"$v\" ] && echo \"$n $v\"; done; "
                "true", parse_vnis)
