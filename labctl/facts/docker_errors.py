"""Docker's own error messages, recognised and turned into the playbook entry at fault plus a hint.

Preflight and the playbook checks prevent most of these; they still happen when someone changed a host by hand
between validation and the step (or another tool shares the host). Patterns are matched against the stderr that
Docker 20.10 prints (captured samples in tests/unit/data/docker-errors-20.10.24.txt).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Explanation:
    kind: str
    docker_says: str   # the one line of Docker's message that matters
    hint: str


_PATTERNS: tuple[tuple[str, str, str], ...] = (
    ("pool-overlaps", r"Pool overlaps with other one on this address space",
     "another network on {host} already uses part of this subnet (see `docker network inspect` of each network "
     "there); remove that network or give {entry} a subnet that does not overlap it"),
    ("network-exists", r"network with name (?P<name>\S+) already exists",
     "a network named {name} exists on {host} without this lab's label (made by hand or by another lab); "
     "remove it (`docker network rm {name}`) or rename {entry}"),
    ("container-exists", r'The container name "/(?P<name>[^"]+)" is already in use',
     "a container named {name} exists on {host} without this lab's label; remove it (`docker rm -f {name}`) or "
     "rename {entry}"),
    ("endpoint-exists", r"endpoint with name (?P<name>\S+) already exists in network (?P<net>\S+)",
     "{name} is already attached to {net} on {host} (a stale endpoint after a crash, or a duplicate attachment); "
     "`docker network disconnect -f {net} {name}` there, then run up again"),
    ("user-ip-default-bridge", r"user specified IP address is supported on user defined networks only",
     "static IPs work only on user-defined networks; in {entry} drop `ip:` for the default bridge or attach the "
     "container to a user-defined network"),
    ("active-endpoints", r"network (?P<name>\S+) id \S+ has active endpoints",
     "containers not managed by this lab are still attached to {name} on {host}; `docker network inspect {name}` "
     "there lists them: disconnect or remove them, then run up (or down) again"),
    ("link-not-running", r"Cannot link to a non running container: /(?P<name>[^ ]+)",
     "{entry} links to {name}, which is not running on {host}; start {name} first (`docker start {name}`)"),
    # 20.10: "Invalid address X: It does not belong ..."; 26: "no configured subnet or ip-range contain the IP
    # address X"
    ("ip-outside-subnet", r"(?:Invalid address (?P<ip>[0-9a-fA-F.:]+): It does not belong to any of this network's "
                          r"subnets|no configured subnet or ip-range contain the IP address "
                          r"(?P<ip26>\d+\.\d+\.\d+\.\d+|[0-9a-fA-F:]+))",
     "{ip} is outside the network's subnet as it exists on {host}: the network there differs from the playbook; "
     "run `labctl down` then `labctl up` to recreate it"),
    ("ip-in-use", r"Address already in use",
     "the static IP of {entry} is already taken on {host} (by a container outside this lab, or a macvlan range "
     "of another host); pick a free address"),
    ("port-allocated", r"Bind for (?P<bind>\S+) failed: port is already allocated",
     "{bind} is already published on {host} by another container or process; change the port in {entry}"),
    ("network-not-found", r"network (?P<name>\S+) not found",
     "network {name} does not exist on {host}: it was removed behind labctl's back; run up again to recreate it"),
    ("invalid-name", r"Invalid container name \((?P<name>[^)]*)\)",
     "Docker refuses the name {name!r} ({entry}): at least two characters, a letter or digit first, then "
     "letters, digits, '_', '.', '-'"),
    ("image-unavailable", r"Unable to find image '(?P<image>[^']+)' locally|pull access denied for (?P<image2>\S+?),",
     "the image is not on {host} and no registry is reachable from there; load it from the controller with "
     "`labctl image load ARCHIVE --tag IMAGE` or list it under `images:` in the playbook"),
)


def explain(stderr: str, host: str, entry: str) -> Explanation | None:
    """The first known Docker error in stderr, with a hint naming the host and the playbook entry; else None."""
    for kind, pattern, hint in _PATTERNS:
        match = re.search(pattern, stderr)
        if match is None:
            continue
        groups: dict[str, str] = {}
        for k, v in match.groupdict().items():  # an engine's other wording: the same group with a number (image2)
            if v is not None:
                groups.setdefault(k.rstrip("0123456789"), v)
        line = next((ln for ln in stderr.splitlines() if match.group(0) in ln), match.group(0))
        line = re.sub(r"^(docker: )?Error response from daemon: ", "", line.strip())
        return Explanation(kind, line, hint.format(host=host, entry=entry, **groups))
    return None
