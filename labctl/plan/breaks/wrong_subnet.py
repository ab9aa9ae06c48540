"""Break-and-fix scenario wrong-subnet."""

from __future__ import annotations

import ipaddress
import shlex

from labctl.errors import UsageError
from labctl.model.playbook import Playbook
from labctl.plan.breaks.base import (
    IN_THE_WAY,
    Action,
    Injection,
    LabFacts,
    Scenario,
    choose_host,
    need_overlay_across,
)


def plan(pb: Playbook, facts: LabFacts, docker_hosts: list[str], host: str | None, container: str | None,
         network: str | None) -> Injection:
    hosts = need_overlay_across(pb, "wrong-subnet")
    target = choose_host(host, hosts, last=False)
    peer = next((h for h in hosts if h != target), None)
    if peer is None or peer not in facts.underlay or not facts.underlay[peer].address:
        raise UsageError(f"wrong-subnet needs another docker host with an overlay container besides {target} and its "
                         "underlay address")
    peer_addr = ipaddress.ip_address(facts.underlay[peer].address)
    subnet = ipaddress.ip_network(f"{peer_addr}/30", strict=False)
    taken = {ipaddress.ip_address(u.address) for u in facts.underlay.values() if u.address}
    gateway = next((a for a in subnet.hosts() if a not in taken), None)
    if gateway is None:
        raise UsageError(f"no free address next to {peer}'s {peer_addr} for the wrong network's gateway",
                         hint="choose another --host")
    name = shlex.quote(IN_THE_WAY)
    # No labctl label on the network (a student who inspects it must not read the answer): undo knows it by its
    # name and the subnet kept in the root-only record.
    subnets = "{{range .IPAM.Config}}{{.Subnet}}{{end}}"
    return Injection("wrong-subnet", pb.name, f"network {IN_THE_WAY} ({subnet}) on {target} takes {peer}'s "
                                              f"address {peer_addr}", (
        Action(target, (f"docker network create --driver bridge --subnet {subnet} --gateway {gateway} "
                        f"{name} >/dev/null",),
               (f"if [ \"$(docker network inspect -f {shlex.quote(subnets)} {name} 2>/dev/null)\" = "
                f"{shlex.quote(str(subnet))} ]; then docker network rm {name} >/dev/null; fi",)),))


SCENARIO = Scenario("wrong-subnet", "create a bridge network on one docker host whose subnet covers another host's "
                    "underlay address",
                    "the overlay between the two hosts fails: 'HOST routes PEER's underlay address through br-... "
                    "(network "
                    f"{IN_THE_WAY}, subnet ...) instead of the underlay'", "an overlay network across hosts",
                    "--host (default: the first docker host)",
                    plan=plan)
