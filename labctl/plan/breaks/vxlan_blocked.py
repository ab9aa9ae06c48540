"""Break-and-fix scenario vxlan-blocked."""

from __future__ import annotations

from labctl.model.playbook import Playbook
from labctl.plan.breaks.base import Action, Injection, LabFacts, Scenario, choose_host, need_overlay_across


def plan(pb: Playbook, facts: LabFacts, docker_hosts: list[str], host: str | None, container: str | None,
         network: str | None) -> Injection:
    target = choose_host(host, need_overlay_across(pb, "vxlan-blocked"))
    # No comment, no label: a student who reads `iptables -S` (or verify's cause, which quotes the rule) must not
    # read the answer. What undo needs is in the root-only record.
    rule = "INPUT -p udp --dport 4789 -j DROP"
    return Injection("vxlan-blocked", pb.name, f"UDP 4789 dropped on {target}", (Action(
        target, (f"iptables -I {rule}",),
        # every copy goes (a run killed after the insert and re-run could have added two); bounded
        (f"for i in 1 2 3 4 5 6 7 8; do iptables -D {rule} 2>/dev/null || break; done",)),))


SCENARIO = Scenario("vxlan-blocked", "drop VXLAN (UDP 4789) arriving at one docker host, with an iptables rule",
                    "every check across hosts on an overlay to or from that host fails: 'VXLAN (UDP 4789) is dropped "
                    "on "
                    "HOST by its firewall' (swarm: 'swarm traffic is dropped on HOST')",
                    "an overlay network with containers on two hosts", "--host (default: the last docker host)",
                    plan=plan)
