"""labctl's own Linux VXLAN devices as the overlay's control plane, any engine (see labctl.planes.vxlan.plan)."""

from __future__ import annotations

from fabric import Connection

from labctl.executors.facts import ask
from labctl.executors.steps import Report, run_steps
from labctl.facts import fact
from labctl.planes.executor_base import ControlPlane, Run
from labctl.planes.vxlan import plan as vxlan_plan
from labctl.planes.vxlan.plan import Device
from labctl.ui import Progress

DEVICES = fact("vxlan.devices", vxlan_plan.FACTS_SCRIPT, vxlan_plan.parse_facts)

class Vxlan(ControlPlane):
    """Active: the devices of the playbook's overlays. Inactive: the lab's devices left from an earlier vxlan run
    are removed (nothing wants them)."""

    name = "vxlan"

    def __init__(self) -> None:
        self.found: dict[str, dict[str, Device]] = {}

    def _wanted(self, run: Run, host: str, active: bool) -> list[vxlan_plan.Wanted]:
        if not active or host not in run.addresses:
            return []
        return vxlan_plan.wanted(run.pb, host, run.addresses, run.inv.underlay_interface)

    def preflight(self, run: Run, active: bool) -> list[str]:
        self.found = {n: f.planes.get("vxlan") or {} for n, f in run.facts.items()}  # gathered with preflight
        return [p for n in run.names for p in vxlan_plan.problems(run.pb, n, self.found[n],
                                                                  self._wanted(run, n, active))]

    def before_networks(self, run: Run, active: bool) -> None:
        steps = [s for n in run.names
                 for s in vxlan_plan.plan_devices(run.pb, n, self.found.get(n, {}), self._wanted(run, n, active))]
        run_steps(run.hosts, steps, run.progress, run.report, "vxlan devices")

    def diagnose(self, run: Run) -> dict[str, list[str]]:
        """host -> what is wrong with its devices (down, missing, a wrong FDB), for the hosts whose address is known."""
        found = run.hosts.each(lambda n, c: ask(c, n, [DEVICES])[DEVICES], run.names, step="vxlan")
        host_of = {a: h for h, a in run.addresses.items()}
        faults = {n: vxlan_plan.faults(vxlan_plan.wanted(run.pb, n, run.addresses, run.inv.underlay_interface),
                                       found[n], host_of) for n in found if n in run.addresses}
        return {n: f for n, f in faults.items() if f}

    def teardown(self, run: Run) -> None:
        run.hosts.each(lambda n, c: remove_vxlan_devices(run.pb.name, n, c, run.progress, run.report), run.names,
                       step="vxlan devices")


def remove_vxlan_devices(lab: str, name: str, conn: Connection, progress: Progress, report: Report) -> None:
    found = ask(conn, name, [DEVICES])[DEVICES]
    for cmd in vxlan_plan.teardown(lab, found):
        conn.run(cmd, hide=True)
        report.add(name, f"{cmd.split()[-1]}: VXLAN device removed")
        progress.step(name, f"{cmd.split()[-1]}: VXLAN device removed")


Plane = Vxlan   # what labctl.planes.executor_halves instantiates
