"""Break-and-fix scenario container-stopped."""

from __future__ import annotations

import shlex

from labctl.model.playbook import Playbook
from labctl.plan.breaks.base import Action, Injection, LabFacts, Scenario, running_container


def plan(pb: Playbook, facts: LabFacts, docker_hosts: list[str], host: str | None, container: str | None,
         network: str | None) -> Injection:
    c = running_container(pb, container, facts, lambda x: True, "in the lab")
    q = shlex.quote(c.name)
    return Injection("container-stopped", pb.name, f"{c.name} stopped on {c.host}", (
        Action(c.host, (f"docker stop -t 1 {q} >/dev/null",), (f"docker start {q} >/dev/null",)),))


SCENARIO = Scenario("container-stopped", "stop one container (docker stop)",
                    "the checks that expect to reach it, or to reach from it, fail: 'C is not running (state: exited)'",
                    "any lab with a container", "--container (default: the last container)",
                    plan=plan)
