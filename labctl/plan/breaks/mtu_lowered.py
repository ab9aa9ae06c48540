"""Break-and-fix scenario mtu-lowered."""

from __future__ import annotations

import shlex

from labctl.errors import UsageError
from labctl.model.playbook import Playbook
from labctl.plan.breaks.base import LOWERED_MTU, Action, Injection, LabFacts, Scenario, choose_host, need_overlay_across


def plan(pb: Playbook, facts: LabFacts, docker_hosts: list[str], host: str | None, container: str | None,
         network: str | None) -> Injection:
    target = choose_host(host, need_overlay_across(pb, "mtu-lowered"))
    seen = facts.underlay.get(target)
    address, mtu = (seen.address, seen.mtu) if seen else ("", 0)
    if not mtu:
        raise UsageError(f"the MTU of {facts.iface} on {target} is not known: is the host up?")
    if mtu <= LOWERED_MTU:
        raise UsageError(f"{facts.iface} on {target} already has MTU {mtu}, not more than {LOWERED_MTU}")
    dev = shlex.quote(facts.iface)
    return Injection("mtu-lowered", pb.name, f"MTU of {facts.iface} on {target} lowered from {mtu} to {LOWERED_MTU}",
                     (Action(target, (f"ip link set dev {dev} mtu {LOWERED_MTU}",),
                             (f"ip link set dev {dev} mtu {int(mtu)}",)),))


SCENARIO = Scenario("mtu-lowered", f"lower one docker host's underlay MTU to {LOWERED_MTU}",
                    "small pings still pass; the whole-packet checks across the overlay to and from that host fail: "
                    "'underlay MTU 1400 on HOST is below the 1500 bytes ...'", "an overlay network across hosts",
                    "--host (default: the last docker host)",
                    plan=plan)
