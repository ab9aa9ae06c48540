"""Docker's own error messages (captured from Docker 20.10.24 on a sandbox host) are recognised and explained
with the host and the playbook entry; an unknown message is left alone (shown raw, never misexplained)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from labctl.errors import HostFailure, StepFailed
from labctl.executors.steps import step_failure
from labctl.facts.docker_errors import explain
from labctl.plan.lab import Step

DATA = os.path.join(os.path.dirname(__file__), "data", "docker-errors-20.10.24.txt")
ENGINES = ("20.10.24", "26.1.5")   # Debian 12's docker.io and Debian 13's (engine: debian-13)


def captured(version: str = "20.10.24") -> dict[str, str]:
    cases: dict[str, str] = {}
    kind = None
    path = os.path.join(os.path.dirname(__file__), "data", f"docker-errors-{version}.txt")
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            kind = line[3:].strip()
            cases[kind] = ""
        elif kind and not line.startswith("#"):
            cases[kind] += line + "\n"
    return cases


CASES = captured()
ALL_CASES = [(v, k, text) for v in ENGINES for k, text in sorted(captured(v).items())]
MISSION_ERRORS = ("pool-overlaps", "network-exists", "endpoint-exists", "user-ip-default-bridge",
                  "active-endpoints", "link-not-running")


@pytest.mark.parametrize("version", ENGINES)
def test_every_error_the_mission_names_was_captured(version: str) -> None:
    assert set(MISSION_ERRORS) <= set(captured(version))


@pytest.mark.parametrize(("version", "kind", "text"), ALL_CASES, ids=[f"{v}-{k}" for v, k, _ in ALL_CASES])
def test_captured_message_is_recognised(version: str, kind: str, text: str) -> None:
    why = explain(text, "node1", "containers.c1")
    assert why is not None, f"{kind}: not recognised"
    assert why.kind == kind
    assert "node1" in why.hint or "containers.c1" in why.hint
    assert not why.docker_says.startswith("docker:") and "Error response from daemon" not in why.docker_says


def test_hint_names_the_objects_docker_named() -> None:
    why = explain(CASES["network-exists"], "node2", "networks.ov")
    assert why is not None and "docker network rm ov" in why.hint and "networks.ov" in why.hint
    why = explain(CASES["link-not-running"], "node1", "containers.linker")
    assert why is not None and "docker start stopped" in why.hint
    why = explain(CASES["port-allocated"], "node1", "containers.web")
    assert why is not None and "0.0.0.0:80 is already published on node1" in why.hint


def test_unknown_message_is_not_explained() -> None:
    assert explain("Error response from daemon: something new went wrong", "node1", "networks.ov") is None


def test_step_failure_names_host_entry_docker_words_and_hint() -> None:
    step = Step("node1", "network ov", "docker network create ov", "create", "networks.ov")
    failure = step_failure("node1", step, 1, CASES["pool-overlaps"])
    assert isinstance(failure, StepFailed)
    text = str(failure.failure)
    assert text.startswith("[node1] `docker network create ov` for networks.ov failed (exit 1):")
    assert "Docker says: Pool overlaps with other one on this address space" in text
    assert re.search(r"hint: another network on node1 .* give networks\.ov a subnet", text)


def test_unrecognised_failure_keeps_stderr_tail() -> None:
    step = Step("node2", "container c3", "docker run c3", "start", "containers.c3")
    failure = step_failure("node2", step, 125, "line1\nsomething odd\n")
    assert failure.failure == HostFailure("node2", "docker run c3", 125, "line1\nsomething odd", "containers.c3")
