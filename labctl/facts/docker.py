"""Facts of a host's Docker engine: its version and ID, its networks and containers as `docker ... inspect` shows
them, overlay VNIs, images, and which labs own what (pure).

Where engines differ, the difference is handled here or in `labctl.facts.dialect`, not by the readers: every
command below works the same on Engine 20.10 and 26 (both print one JSON object per line with `--format
'{{json .}}'`; `docker info --format '{{.ID}}'` is the engine ID on both, derived from /etc/docker/key.json on 20.10
and /var/lib/docker/engine-id from 23 on)."""

from __future__ import annotations

import json
import shlex
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


def networks(label_filter: str = "") -> Fact[dict[str, dict[str, Any]]]:
    """name -> `docker network inspect` JSON; label_filter "": every network of the host."""
    return fact("engine.networks",
                f"docker network ls -q{_filter(label_filter)} 2>/dev/null | xargs -r docker network inspect "
                "--format '{{json .}}' 2>/dev/null",
                lambda t: {n["Name"]: n for n in _json_lines(t) if "Name" in n})


def containers(label_filter: str = "") -> Fact[dict[str, dict[str, Any]]]:
    """name -> `docker inspect` JSON; label_filter "": every container of the host."""
    return fact("engine.containers",
                f"docker ps -aq{_filter(label_filter)} 2>/dev/null | xargs -r docker inspect "
                "--format '{{json .}}' 2>/dev/null",
                lambda t: {str(c["Name"]).lstrip("/"): c for c in _json_lines(t) if "Name" in c})


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
