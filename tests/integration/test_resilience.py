"""A lab is never bricked and never half-applied, for real on sandbox hosts.

`labctl up` is killed (SIGKILL, and SIGINT as Ctrl-C sends it) when each phase's progress line appears and at
random moments; after each kill, one `up` converges (`verify` passes) and `down` leaves nothing. Two runs at once are
serialised by the host locks. Input Docker would refuse is refused before any change, and a change Docker refuses
anyway is rolled back, so the lab that worked still works. Drift is removed, and `down` works with dockerd stopped.
"""

from __future__ import annotations

import json
import os
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from labctl.executors.remote import Hosts

from .conftest import Lab, seed_sandbox, sh

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEED = os.path.join(ROOT, "playbooks", "seed-overlay.yaml")
LAB = "ires"
SUBNET = "198.18.82.0/24"
NODES = ("node1", "node2")
DOCKERD_PIDFILE = "/run/labctl/dockerd.pid"
ETCD_PIDFILE = "/run/labctl/etcd.pid"

# The progress line of each phase of a cold `up` of the seed lab (the moment the kill is sent).
PHASES = {
    "preflight": "preflight:",
    "store": "etcd started",
    "daemon config (dockerd being stopped)": "restarting dockerd",
    "dockerd start": "starting dockerd",
    "networks": "network ov: create",
    "containers": "container c1: start",
    "gossip": "overlay: waiting until",
}
RANDOM_KILLS = 3  # per signal, at a random delay after the start (seeded, printed)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    yield from seed_sandbox(tmp_path_factory, LAB, SUBNET, (SEED,))


def lab_args(lab: Lab, playbook: str | Path = SEED) -> list[str]:
    return ["-i", str(lab.inventory), "-p", str(playbook)]


def up(lab: Lab, playbook: str | Path = SEED, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return lab.labctl("up", *lab_args(lab, playbook), "--wait", "60", *extra, check=check)


def assert_verify_passes(lab: Lab, why: str) -> None:
    res = lab.labctl("verify", *lab_args(lab), check=False)
    assert res.returncode == 0, f"{why}: verify failed\n{res.stdout[-3000:]}\n{res.stderr[-2000:]}"
    assert "OK: 42/42" in res.stdout, res.stdout[-500:]


def assert_nothing_left(hosts: Hosts, why: str) -> None:
    for h in NODES:
        assert sh(hosts, h, "docker ps -aq").stdout.strip() == "", f"{why}: containers left on {h}"
        nets = sorted(sh(hosts, h, "docker network ls --format '{{.Name}}'").stdout.split())
        assert nets == ["bridge", "host", "none"], f"{why}: networks left on {h}: {nets}"
        assert not sh(hosts, h, "test -e /etc/docker/daemon.json").ok, f"{why}: daemon.json left on {h}"
        assert not sh(hosts, h, "test -e /var/lib/labctl/dockerd-restart.pending").ok, f"{why}: journal on {h}"
        assert sh(hosts, h, "docker version --format '{{.Server.Version}}'").ok, f"{why}: dockerd down on {h}"
    assert not sh(hosts, "store", f"start-stop-daemon --status --pidfile {ETCD_PIDFILE}").ok, f"{why}: etcd runs"
    assert not sh(hosts, "store", "test -e /var/lib/labctl/etcd").ok, f"{why}: the store's data is left"


def container_ids(hosts: Hosts) -> dict[str, str]:
    out = {}
    for h in NODES:
        for line in sh(hosts, h, "docker ps --no-trunc --format '{{.Names}} {{.ID}}'").stdout.split("\n"):
            if line.strip():
                name, cid = line.split()
                out[name] = cid
    return out


def _default_sigint() -> None:
    # A child of a background job inherits SIGINT ignored; Ctrl-C's effect needs Python's own handler back.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt(lab: Lab, sig: signal.Signals, *, at_line: str | None = None, after: float | None = None,
              playbook: str | Path = SEED) -> tuple[bool, str]:
    """Start `labctl up` and send `sig` when a progress line contains at_line (or `after` seconds in).
    Returns whether the signal was sent before the run ended by itself, and the run's stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "labctl", "up", *lab_args(lab, playbook), "--wait", "60"],
                            env=lab.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    sent = ended = False
    deadline = time.monotonic() + (after if after is not None else 120)
    try:
        while not sent:
            left = deadline - time.monotonic()
            if left <= 0:
                if after is None:
                    raise AssertionError(f"no line with {at_line!r} within 120 s:\n{''.join(seen)}")
                break
            try:
                line = lines.get(timeout=min(left, 1))
            except queue.Empty:
                continue
            if line is None:  # the run ended first
                ended = True
                break
            seen.append(line)
            if at_line is not None and at_line in line:
                break
        if not ended and proc.poll() is None:
            proc.send_signal(sig)
            sent = True
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    while not ended and (line := lines.get(timeout=10)) is not None:
        seen.append(line)
    return sent, "".join(seen)


def test_interrupted_up_always_converges(lab: Lab, hosts: Hosts) -> None:
    rng = random.Random(11)
    trials: list[tuple[str, signal.Signals, str | None, float | None]] = []
    for sig in (signal.SIGKILL, signal.SIGINT):
        trials += [(phase, sig, line, None) for phase, line in PHASES.items()]
        trials += [(f"random {d:.2f}s", sig, None, d) for d in (rng.uniform(0.2, 7.0) for _ in range(RANDOM_KILLS))]
    assert len(trials) >= 20
    killed = 0
    for phase, sig, line, after in trials:
        why = f"{sig.name} at {phase}"
        sent, err = interrupt(lab, sig, at_line=line, after=after)
        killed += sent
        assert "Traceback" not in err, f"{why}:\n{err[-3000:]}"
        res = up(lab, check=False)
        assert res.returncode == 0, f"{why}: the next up failed\n{err[-1500:]}\n---\n{res.stdout}\n{res.stderr[-3000:]}"
        assert "no changes" in up(lab).stdout, f"{why}: a second up still changed something"
        assert_verify_passes(lab, why)
        down = lab.labctl("down", *lab_args(lab), check=False)
        assert down.returncode == 0, f"{why}: down failed\n{down.stdout}\n{down.stderr[-3000:]}"
        assert_nothing_left(hosts, why)
    print(f"\n{len(trials)} interrupted runs ({killed} signalled before the run ended by itself); all converged")
    assert killed >= 18, "most trials must hit a run that is still working"


def test_two_ups_at_once_one_runs_the_other_is_refused_or_waits(lab: Lab, hosts: Hosts) -> None:
    cmd = [sys.executable, "-m", "labctl.cli", "up", *lab_args(lab)]
    first = subprocess.Popen(cmd, env=lab.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(cmd, env=lab.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = [(p.wait(timeout=180), *p.communicate()) for p in (first, second)]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, _, err in results if code == 2)
    assert re.search(r"is locked by lab 'seed-overlay' \(`labctl up`, pid \d+ on \S+, since \d{4}-", refused), refused
    assert "nothing was changed" in refused and "--wait" in refused
    assert_verify_passes(lab, "after two ups at once")

    # Both wait: the second runs after the first and finds nothing to do.
    procs = [subprocess.Popen([*cmd, "--wait", "120"], env=lab.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    assert [c for c, _, _ in outs] == [0, 0], outs
    assert any("waiting up to 120s for the lock held by lab 'seed-overlay'" in err for _, _, err in outs), outs
    assert_verify_passes(lab, "after two waiting ups")


def mutated(tmp_path: Path, change) -> Path:  # type: ignore[no-untyped-def]
    with open(SEED, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    change(data)
    path = tmp_path / "mutated.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))  # key order is the attachment order
    return path


REFUSED_BEFORE_ANY_CHANGE = {
    "mtu Docker rejects": (lambda d: d["networks"]["ov"].setdefault("options", {}).update(
        {"com.docker.network.driver.mtu": "1400x"}), "networks.ov.options.com.docker.network.driver.mtu"),
    "port out of range": (lambda d: d["containers"]["c1"].update(ports=["99999:80"]), "containers.c1.ports"),
    "same host port twice on a host": (lambda d: (d["containers"]["c1"].update(ports=["8080:80"]),
                                                  d["containers"]["c2"].update(ports=["8080:81"])),
                                       "8080"),
}


@pytest.mark.parametrize("case", REFUSED_BEFORE_ANY_CHANGE)
def test_input_docker_would_refuse_changes_nothing(lab: Lab, hosts: Hosts, tmp_path: Path, case: str) -> None:
    up(lab)
    before = container_ids(hosts)
    change, field = REFUSED_BEFORE_ANY_CHANGE[case]
    res = lab.labctl("up", *lab_args(lab, mutated(tmp_path, change)), check=False)
    assert res.returncode == 2, res.stderr
    assert field in res.stderr, res.stderr
    assert container_ids(hosts) == before, "no container was touched"
    assert_verify_passes(lab, case)


def test_change_docker_refuses_is_rolled_back(lab: Lab, hosts: Hosts, tmp_path: Path) -> None:
    """c1 asks for a host port that a container outside the lab holds on node1: valid input, refused by Docker
    at run time (`port is already allocated`) after c1 was removed for the change."""
    up(lab)
    sh(hosts, "node1", "docker run -d --name squatter -p 8089:80 labctl/busybox:latest sleep 600")
    try:
        before = container_ids(hosts)
        res = lab.labctl("up", *lab_args(lab, mutated(tmp_path, lambda d: d["containers"]["c1"].update(
            ports=["8089:80"]))), check=False)
        assert res.returncode == 1, res.stderr
        assert "[node1]" in res.stderr and "port is already allocated" in res.stderr, res.stderr
        assert "restored: container c1 on node1" in res.stderr, res.stderr
        after = container_ids(hosts)
        assert {n: i for n, i in after.items() if n != "c1"} == {n: i for n, i in before.items() if n != "c1"}, \
            "only the container of the refused change was touched"
        assert_verify_passes(lab, "after the refused change")
        assert "no changes" in up(lab).stdout, "the lab after the rollback is exactly the playbook's"
    finally:
        sh(hosts, "node1", "docker rm -f squatter")


def test_drift_is_listed_and_removed(lab: Lab, hosts: Hosts, tmp_path: Path) -> None:
    up(lab)
    bigger = mutated(tmp_path, lambda d: d["containers"].update(c5={"host": "node2", "networks": ["ov"]}))
    up(lab, bigger)
    status = lab.labctl("status", *lab_args(lab), check=False)
    assert "extra: containers.c5" in status.stdout, status.stdout
    res = up(lab)
    assert "c5" in res.stdout and "removed" in res.stdout, res.stdout
    assert "c5" not in container_ids(hosts)
    assert "extra" not in lab.labctl("status", *lab_args(lab)).stdout
    assert_verify_passes(lab, "after drift removal")


def test_status_and_down_with_dockerd_stopped(lab: Lab, hosts: Hosts) -> None:
    up(lab)
    sh(hosts, "node1", f"start-stop-daemon --stop --pidfile {DOCKERD_PIDFILE} --retry TERM/30/KILL/5 --remove-pidfile")
    status = lab.labctl("status", *lab_args(lab), "--json", check=False)
    assert status.returncode == 1
    state = {h["name"]: h.get("state") for h in json.loads(status.stdout)["hosts"]}
    assert state["node1"] == "dockerd not running" and not state["node2"], state
    res = lab.labctl("down", *lab_args(lab), check=False)
    assert res.returncode == 0, res.stderr
    assert "node1: dockerd is not running: dockerd restarted" in res.stdout, res.stdout
    assert_nothing_left(hosts, "down with dockerd stopped")


def test_down_starts_a_stopped_store_to_wipe_its_keys(lab: Lab, hosts: Hosts) -> None:
    up(lab)
    sh(hosts, "store", f"start-stop-daemon --stop --pidfile {ETCD_PIDFILE} --retry TERM/30/KILL/5 --remove-pidfile")
    res = lab.labctl("down", *lab_args(lab), check=False)
    assert res.returncode == 0, res.stderr
    assert "store keys under docker/ removed" in res.stdout, res.stdout
    assert_nothing_left(hosts, "down with the store stopped")
    assert "no changes" in lab.labctl("down", *lab_args(lab)).stdout
