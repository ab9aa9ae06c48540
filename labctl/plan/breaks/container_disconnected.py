"""Break-and-fix scenario container-disconnected."""

from __future__ import annotations

import shlex

from labctl.model.playbook import DEFAULT_BRIDGE, Attachment, Playbook
from labctl.plan.breaks.base import Action, Injection, LabFacts, Scenario, running_container


def plan(pb: Playbook, facts: LabFacts, docker_hosts: list[str], host: str | None,
         container: str | None, network: str | None) -> Injection:
    def on_it(a: Attachment) -> bool:
        return a.network != DEFAULT_BRIDGE and (network is None or a.network == network)

    c = running_container(pb, container, facts, lambda x: any(on_it(a) for a in x.networks),
                   f"on network {network}" if network else "on a playbook network")
    attachment = next(a for a in c.networks if on_it(a))
    address = facts.addresses.get(c.name, {}).get(attachment.network) or attachment.ip
    connect = ["docker", "network", "connect"] + (["--ip", address] if address else [])
    for alias in attachment.aliases:
        connect += ["--alias", alias]
    net, q = shlex.quote(attachment.network), shlex.quote(c.name)
    needle = shlex.quote(f'"{attachment.network}":')   # already attached (undo run twice): nothing to do
    attached = f"docker inspect -f '{{{{json .NetworkSettings.Networks}}}}' {q} | grep -qF {needle}"
    return Injection("container-disconnected", pb.name, f"{c.name} disconnected from {attachment.network} on {c.host}",
                     (Action(c.host, (f"docker network disconnect {net} {q}",),
                             (f"{attached} || {shlex.join([*connect, attachment.network, c.name])}",)),))


SCENARIO = Scenario("container-disconnected", "disconnect one container from one of its networks",
                    "the container's checks on that network fail: 'C is not attached to NETWORK'",
                    "a container on a network of the playbook", "--container, --network (default: the last container "
                    "and its first network)",
                    plan=plan)
