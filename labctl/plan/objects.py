"""Every network and container of a docker host in one SSH round trip, `docker network inspect` and `docker inspect`
as JSON: status, verify, graph and trace read the lab's (by label), grade reads all of them (students make theirs
by hand). One query and one parser for all of them (pure)."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

from labctl.plan.lock import JOURNAL

SEP = "--labctl-status--"


def query(label_filter: str = "", extra: str = "") -> str:
    """label_filter "": every network and container of the host; extra: a command whose output comes back too."""
    f = f" --filter {shlex.quote(f'label={label_filter}')}" if label_filter else ""
    return (f"test -e {JOURNAL} && echo journal; docker version --format '{{{{.Server.Version}}}}' 2>/dev/null; "
            f"echo {SEP}; "
            f"docker network ls -q{f} | xargs -r docker network inspect --format '{{{{json .}}}}'; "
            f"echo {SEP}; docker ps -aq{f} | xargs -r docker inspect --format '{{{{json .}}}}'"
            + (f"; echo {SEP}; {extra}" if extra else ""))


@dataclass(frozen=True)
class HostObjects:
    engine: str                              # the engine's version ("" when dockerd does not answer)
    networks: dict[str, dict[str, Any]]      # name -> `docker network inspect` JSON
    containers: dict[str, dict[str, Any]]    # name -> `docker inspect` JSON
    extra: str = ""
    pending: bool = False                    # labctl's restart journal is there: a dockerd restart was begun

    def container_by_id(self, ident: str) -> str | None:
        return next((n for n, c in self.containers.items() if str(c.get("Id", "")).startswith(ident)), None)


def parse_objects(out: str) -> HostObjects:
    """One host's answer to `query()`."""
    version, nets, ctrs, extra = (out.split(SEP + "\n", 3) + ["", "", ""])[:4]
    networks = [json.loads(line) for line in nets.splitlines() if line.strip()]
    containers = [json.loads(line) for line in ctrs.splitlines() if line.strip()]
    return HostObjects(engine=version.removeprefix("journal").strip(), networks={n["Name"]: n for n in networks},
                       containers={c["Name"].lstrip("/"): c for c in containers}, extra=extra,
                       pending=version.startswith("journal"))
