"""What `sandbox up` must do, given the inventory and what exists on the machine."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from labctl.model.inventory import Inventory, sandbox_addresses


def lab_tag(lab: str) -> str:
    """Short stable tag for kernel object names (interface names are limited to 15 characters)."""
    return hashlib.sha1(lab.encode()).hexdigest()[:5]


def host_tag(host: str) -> str:
    return hashlib.sha1(host.encode()).hexdigest()[:4]


@dataclass(frozen=True)
class Names:
    """Every kernel object name a sandbox lab uses, derived from the lab name so leftovers can be found."""

    lab: str

    @property
    def prefix(self) -> str:
        return f"lc{lab_tag(self.lab)}"          # 7 chars: prefix of every interface in the root namespace

    @property
    def switch_netns(self) -> str:
        return f"labctl-{self.lab}"

    bridge: str = "sw0"

    @property
    def controller_if(self) -> str:
        return f"{self.prefix}c0"

    @property
    def controller_peer(self) -> str:
        return f"{self.prefix}s0"

    def port(self, host: str) -> str:
        """Switch-side end of a host's veth."""
        return f"{self.prefix}p{host_tag(host)}"

    def host_if_tmp(self, host: str) -> str:
        """Host-side end before it is renamed to the underlay interface name inside the host."""
        return f"{self.prefix}h{host_tag(host)}"

    def mac(self, host: str) -> str:
        """Stable, locally administered MAC of a host's underlay interface: a host rebuilt after a crash keeps
        it, so neighbours' ARP caches stay right (else the controller keeps sending to the dead veth's MAC)."""
        digest = hashlib.sha1(f"{self.lab}:{host}".encode()).digest()
        return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))

    def marker(self, host: str) -> str:
        """argv[0] of a host's PID 1: how labctl finds its own processes (and only those)."""
        return f"labctl-sandbox:{self.lab}:{host}"

    @property
    def marker_prefix(self) -> str:
        return f"labctl-sandbox:{self.lab}:"

    def cgroup(self, host: str) -> str:
        return f"labctl-{self.lab}-{host}"

    @property
    def cgroup_prefix(self) -> str:
        return f"labctl-{self.lab}-"


@dataclass(frozen=True)
class HostFacts:
    name: str
    running: bool        # PID 1 alive with our marker
    address: str | None  # as recorded in the lab state
    roles: tuple[str, ...] = ()
    sshd: bool = False   # port 22 answers
    engine: str = "system"   # the engine it was built with (inventory `engine:`)
    access: str = ""         # how it was made reachable (access_signature)


def access_signature(inv: Inventory, host: str) -> str:
    """What of the inventory's `sandbox:` shaped this host: a host made otherwise is made again."""
    acc = inv.sandbox_access
    if acc is None:
        return ""
    parts = [f"login={acc.login_user}", f"sudo={acc.sudo}"] if acc.login_user else []
    if acc.bastion and acc.bastion != host:
        parts.append(f"behind={acc.bastion}")
    return " ".join(parts)


@dataclass
class SandboxFacts:
    state_subnet: str | None = None   # subnet recorded in the lab state, None when there is no state
    switch: bool = False              # switch namespace and controller veth exist
    hosts: dict[str, HostFacts] = field(default_factory=dict)
    stray_hosts: list[str] = field(default_factory=list)  # marker processes not in the state file


@dataclass(frozen=True)
class Action:
    kind: str    # "reset-lab" | "create-switch" | "destroy-host" | "create-host" | "keep-host"
    target: str
    reason: str


def plan_sandbox(inv: Inventory, facts: SandboxFacts) -> list[Action]:
    """Keep hosts that run as described; rebuild what is missing, broken or changed; remove the rest."""
    subnet = str(inv.subnet)
    actions: list[Action] = []
    addresses = sandbox_addresses(inv)
    if facts.state_subnet is not None and facts.state_subnet != subnet:
        reason = f"underlay subnet changed from {facts.state_subnet} to {subnet}"
        return [Action("reset-lab", inv.name, reason)] + _create_all(inv, addresses, reason)
    if not facts.switch:
        anything = bool(facts.hosts or facts.stray_hosts or facts.state_subnet)
        reason = "leftovers of an earlier run without a working switch" if anything else "new lab"
        return ([Action("reset-lab", inv.name, reason)] if anything else []) + _create_all(inv, addresses, reason)
    wanted = {h.name: h for h in inv.hosts}
    for name in sorted(set(facts.hosts) - set(wanted)) + sorted(set(facts.stray_hosts) - set(facts.hosts)):
        actions.append(Action("destroy-host", name, "not in the inventory"))
    for h in inv.hosts:
        f = facts.hosts.get(h.name)
        if f is None:
            reason = "leftover process from a crashed run" if h.name in facts.stray_hosts else "new host"
            if h.name in facts.stray_hosts:
                actions.append(Action("destroy-host", h.name, reason))
            actions.append(Action("create-host", h.name, reason))
        elif not f.running or not f.sshd:
            actions.append(Action("destroy-host", h.name, "not running" if not f.running else "sshd not answering"))
            actions.append(Action("create-host", h.name, "was broken"))
        elif f.address != addresses[h.name] or tuple(f.roles) != h.roles:
            actions.append(Action("destroy-host", h.name, "address or roles changed"))
            actions.append(Action("create-host", h.name, "address or roles changed"))
        elif f.access != access_signature(inv, h.name):
            reason = f"access changed from {f.access or 'root only'} to {access_signature(inv, h.name) or 'root only'}"
            actions.append(Action("destroy-host", h.name, reason))
            actions.append(Action("create-host", h.name, reason))
        elif f.engine != h.engine:
            # a fresh host: another engine's data root (images, networks) is not carried over
            reason = f"engine changed from {f.engine} to {h.engine}"
            actions.append(Action("destroy-host", h.name, reason))
            actions.append(Action("create-host", h.name, reason))
        else:
            engine = f", engine {h.engine}" if h.engine != "system" else ""
            actions.append(Action("keep-host", h.name, f"running at {f.address}{engine}"))
    return actions


def _create_all(inv: Inventory, addresses: dict[str, str], reason: str) -> list[Action]:
    return [Action("create-switch", inv.name, reason)] + [
        Action("create-host", h.name, f"{reason}: {addresses[h.name]}") for h in inv.hosts
    ]
