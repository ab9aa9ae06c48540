"""Running planned steps on the hosts, and what a run reports (shared by `up`, `down`, `provision` and the control
planes)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fabric import Connection

from labctl.errors import HostFailure, LabctlError, StepFailed
from labctl.executors.local import tail
from labctl.executors.remote import Hosts
from labctl.facts.docker_errors import explain
from labctl.plan.down import SKIPPED_PREFIX
from labctl.plan.lab import Step
from labctl.ui import Progress


class PreflightRefused(LabctlError):
    """Facts from the hosts rule the lab out; nothing was changed. Exit 2: fix the hosts or the playbook."""

    exit_code = 2

    def __init__(self, problems: list[str]) -> None:
        super().__init__("preflight refused the lab; nothing was changed:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass
class Report:
    changes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)   # hosts `down` could not touch, with the reason
    repairs: list[str] = field(default_factory=list)   # changes that mended what Docker got wrong (also in changes)

    def add(self, host: str, what: str) -> None:
        self.changes.append(f"{host}: {what}")


REPORT_PREFIX = "labctl-report: "


def run_steps(hosts: Hosts, steps: list[Step], progress: Progress, report: Report, phase: str) -> None:
    """Each host's steps in order, hosts in parallel."""
    per_host: dict[str, list[Step]] = {}
    for s in steps:
        per_host.setdefault(s.host, []).append(s)

    def one(host: str, conn: Connection) -> None:
        for s in per_host[host]:
            if s.command is None:
                continue
            progress.step(host, f"{s.what}: {s.reason}")
            res = conn.run(s.command, hide=True, warn=True)
            if not res.ok:
                if s.cleanup:
                    conn.run(s.cleanup, hide=True, warn=True)
                raise step_failure(host, s, res.exited, str(res.stderr or res.stdout))
            if not s.reports:
                report.add(host, f"{s.what}: {s.reason}")
            for line in str(res.stdout).splitlines():   # what a step says it did (provisioning: exact versions)
                if line.startswith(REPORT_PREFIX):
                    report.add(host, line[len(REPORT_PREFIX):])
                elif line.startswith(SKIPPED_PREFIX):         # what it could not do (down: a dockerd that hangs)
                    report.skipped.append(f"{host}: {line[len(SKIPPED_PREFIX):]}")

    hosts.each(one, list(per_host), step=phase)


def step_failure(host: str, step: Step, code: int | None, stderr: str) -> StepFailed:
    """A failed Docker command as the host, the playbook entry, Docker's words and a hint."""
    why = explain(stderr, host, step.entry or step.what)
    if why is None:
        return StepFailed(HostFailure(host, step.command or step.what, code, tail(stderr), step.entry))
    return StepFailed(HostFailure(host, step.command or step.what, code, f"Docker says: {why.docker_says}",
                                  step.entry, why.hint))
