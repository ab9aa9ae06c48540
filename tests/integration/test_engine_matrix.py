"""The seed lab on every engine and control plane that can carry it, for real on sandbox hosts whose engines come
from Debian's archive (labctl's engine cache): Debian 11's docker.io 20.10.5 with Consul 1.8.7 (the tutorials'
path), Debian 12's 20.10.24 with etcd and with swarm, Debian 13's 26.1.5 with swarm and with labctl's VXLAN devices,
and a mixed inventory (12 + 13) with `auto`. For each pair: `up`; tcpdump on the lab switch sees the VNI that `status`
reports; `verify` passes in full; a second `up` changes nothing; `down` leaves nothing. The pairs that cannot work
are refused in preflight with exit 2 and nothing changed. `up` is also killed at each of its phases and at random
moments on Consul and on Debian 13's swarm; each time the next `up` converges.

One sandbox lab per engine inventory, shared by the pairs of that engine (module scope).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from labctl.executors.remote import Hosts
from labctl.facts import answers, docker, script
from labctl.model.inventory import load_inventory
from labctl.plan.lab import LABEL
from labctl.plan.sandbox import Names
from labctl.providers import registry

from .conftest import Lab, sh
from .test_resilience import interrupt

ROOT = Path(__file__).parents[2]
PB = {name: str(ROOT / "playbooks" / f"{name}.yaml")
      for name in ("seed-overlay", "seed-overlay-consul", "seed-overlay-swarm", "seed-overlay-vxlan")}
NODES = ("node1", "node2")
LABS = {  # lab name -> (subnet third octet, engine of node1, engine of node2)
    "imx11": (90, "debian-11", "debian-11"),
    "imx12": (91, "debian-12", "debian-12"),
    "imx13": (92, "debian-13", "debian-13"),
    "imxmix": (93, "debian-12", "debian-13"),
}
# engine lab, playbook, the plane it runs on, the engine version prefix seen on the hosts
PAIRS = [
    ("imx11", "seed-overlay-consul", "kvstore", "20.10.5"),
    ("imx12", "seed-overlay", "kvstore", "20.10.24"),
    ("imx12", "seed-overlay-swarm", "swarm", "20.10.24"),
    ("imx13", "seed-overlay-swarm", "swarm", "26.1.5"),
    ("imx13", "seed-overlay-vxlan", "vxlan", "26.1.5"),
    ("imxmix", "seed-overlay", "swarm", ""),
]
INTERRUPTS = 10   # per plane: every phase of a cold up (SIGKILL), the rest at random moments (SIGINT)


def write_inventory(tmp: Path, name: str) -> Lab:
    octet, e1, e2 = LABS[name]
    inv = tmp / f"{name}.yaml"
    inv.write_text(f"name: {name}\nprovider: sandbox\nunderlay: {{subnet: 198.18.{octet}.0/24}}\nhosts:\n"
                   "  store: {roles: [store]}\n"
                   f"  node1: {{roles: [docker], engine: {e1}}}\n  node2: {{roles: [docker], engine: {e2}}}\n")
    env = dict(os.environ, LABCTL_STATE_DIR=str(tmp / "state"), PYTHONPATH=str(ROOT))
    return Lab(name, inv, tmp / "state", env)


_labs: dict[str, Lab] = {}


@pytest.fixture(scope="module")
def labs(tmp_path_factory):  # type: ignore[no-untyped-def]
    """Sandbox labs made on first use (their engines fetched into the cache if they are not there yet)."""
    yield _labs
    for lab in _labs.values():
        for pb in PB.values():
            lab.labctl("down", "-i", str(lab.inventory), "-p", pb, "--wait", "60", check=False)
        lab.labctl("sandbox", "down", "-i", str(lab.inventory), check=False)
    _labs.clear()


def sandbox(labs: dict[str, Lab], tmp_path_factory, name: str) -> Lab:  # type: ignore[no-untyped-def]
    if name not in labs:
        lab = write_inventory(tmp_path_factory.mktemp(name), name)
        lab.labctl("sandbox", "down", "-i", str(lab.inventory))
        res = lab.labctl("sandbox", "up", "-i", str(lab.inventory), timeout=900)
        assert "Traceback" not in res.stderr
        labs[name] = lab
    return labs[name]


def connect(lab: Lab) -> Hosts:
    os.environ["LABCTL_STATE_DIR"] = lab.env["LABCTL_STATE_DIR"]
    return Hosts(registry.endpoints(load_inventory(str(lab.inventory))))


def args(lab: Lab, pb: str) -> list[str]:
    return ["-i", str(lab.inventory), "-p", PB[pb]]


def assert_nothing_left(lab: Lab, hosts: Hosts, why: str) -> None:
    for h in NODES:
        assert sh(hosts, h, "docker ps -aq").stdout.strip() == "", f"{why}: containers left on {h}"
        nets = sorted(sh(hosts, h, "docker network ls --format '{{.Name}}'").stdout.split())
        assert nets == ["bridge", "host", "none"], f"{why}: networks left on {h}: {nets}"
        assert not sh(hosts, h, "test -e /etc/docker/daemon.json").ok, f"{why}: daemon.json left on {h}"
        assert not sh(hosts, h, "test -e /var/lib/labctl/dockerd-restart.pending").ok, f"{why}: journal on {h}"
        swarm = sh(hosts, h, "docker info --format '{{.Swarm.LocalNodeState}}'").stdout.strip()
        assert swarm == "inactive", f"{why}: {h} is still in a swarm ({swarm})"
        assert sh(hosts, h, "ip -o link show type vxlan").stdout.strip() == "", f"{why}: VXLAN device on {h}"
    for daemon in ("consul", "etcd"):
        assert not sh(hosts, "store", f"pidof {daemon}").ok, f"{why}: {daemon} still runs on the store host"
        assert not sh(hosts, "store", f"test -e /var/lib/labctl/{daemon}").ok, f"{why}: {daemon}'s data is left"


def vxlan_on_the_wire(lab: Lab, hosts: Hosts, target: str) -> str:
    capture = subprocess.Popen(["timeout", "15", "ip", "netns", "exec", Names(lab.name).switch_netns, "tcpdump",
                                "-c", "2", "-lni", "sw0", "udp port 4789"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    time.sleep(1.5)
    ping = sh(hosts, "node1", f"docker exec c1 ping -c 3 -W 2 {target}")
    out, _ = capture.communicate(timeout=20)
    assert ping.ok and "3 packets received" in ping.stdout, f"c1 reaches {target}: {ping.stdout} {ping.stderr}"
    return out


def differences(api: Any, cli: Any, path: str = "") -> list[str]:
    """Where the reader's objects differ from the CLI's: a value both have that differs, or a field only the CLI
    has, with a value. The CLI (28.x here) re-encodes the objects with its own types, which add zero-valued fields
    the engine does not know (EnableIPv4, GwPriority) and drop some it does (KernelMemory)."""
    if isinstance(api, dict) and isinstance(cli, dict):
        found = [d for k in sorted(set(api) & set(cli)) for d in differences(api[k], cli[k], f"{path}.{k}")]
        return found + [f"{path}.{k}: only the CLI has {str(cli[k])[:60]}" for k in sorted(set(cli) - set(api))
                        if cli[k] not in (None, False, 0, "", {}, [])]
    return [] if api == cli else [f"{path}: {str(api)[:60]} / {str(cli)[:60]}"]


def assert_engine_reader_agrees_with_the_cli(hosts: Hosts, label: str) -> None:
    """engine.objects as grade and status read it (the reader on the Engine API) and as the Docker CLI reads it
    (taken where DOCKER_HOST is set): the same version, the same objects, the same fields."""
    for h in NODES:
        for wanted in ("", label):
            fact = docker.objects(wanted)
            ran = sh(hosts, h, f"{docker.reader_command(wanted)} >/dev/null")   # no silent fallback to the CLI
            api = answers(h, [fact], sh(hosts, h, script([fact])).stdout)[fact]
            cli = answers(h, [fact], sh(hosts, h, "export DOCKER_HOST=unix:///var/run/docker.sock\n" +
                                        script([fact])).stdout)[fact]
            assert ran.ok, f"{h}: the reader exits {ran.exited}"
            assert api.version and api.version == cli.version, (h, api.version, cli.version)
            assert set(api.networks) == set(cli.networks) and set(api.containers) == set(cli.containers), h
            assert "ov" in api.networks and ("c1" in api.containers or h != "node1"), (h, sorted(api.containers))
            diffs = [f"{kind} {n}{d}" for kind, x, y in (("network", api.networks, cli.networks),
                                                        ("container", api.containers, cli.containers))
                     for n in x for d in differences(x[n], y[n])]
            assert diffs == [], f"{h} ({wanted or 'every object'}): {diffs[:5]}"


@pytest.mark.parametrize(("name", "pb", "plane", "version"), PAIRS,
                         ids=[f"{LABS[n][1]}{'+' + LABS[n][2] if LABS[n][1] != LABS[n][2] else ''}-{pb}"
                              for n, pb, _, _ in PAIRS])
def test_seed_lab_on_engine_and_plane(labs, tmp_path_factory, name: str, pb: str, plane: str,  # type: ignore[no-untyped-def]
                                      version: str) -> None:
    lab = sandbox(labs, tmp_path_factory, name)
    with connect(lab) as hosts:
        for h in NODES:
            want = version or ("20.10.24" if h == "node1" else "26.1.5")
            seen = sh(hosts, h, "docker version --format '{{.Server.Version}}'").stdout.strip()
            assert seen.startswith(want), f"{h} runs {seen}, its inventory engine gives {want}"
        t0 = time.monotonic()
        res = lab.labctl("up", *args(lab, pb))
        t_up = time.monotonic() - t0
        assert f"overlay control plane: {plane}" in res.stderr, res.stderr[-2000:]
        if name == "imxmix":
            assert "node2: Docker Engine 26.1.5+dfsg1 has no cluster store (removed in 23.0)" in res.stderr
        status = json.loads(lab.labctl("status", *args(lab, pb), "--json").stdout)
        ov = {n["name"]: n for n in status["networks"]}["ov"]
        assert isinstance(ov["vni"], int), ov
        assert status["control"]["plane"] == plane and status["missing"] == []
        # by name where Docker resolves across hosts (kvstore, swarm); labctl's VXLAN devices carry a macvlan
        # network per host, whose names Docker resolves on that host only: c3's address then
        c3 = {c["name"]: c for c in status["containers"]}["c3"]["addresses"]["ov"]
        out = vxlan_on_the_wire(lab, hosts, c3 if plane == "vxlan" else "c3")
        assert f"vni {ov['vni']}" in out, f"the VNI status reports ({ov['vni']}) is the one on the wire:\n{out}"
        if pb == "seed-overlay-consul":
            store = status["store"]
            addrs = {ep.name: ep.address for ep in registry.endpoints(load_inventory(str(lab.inventory)))}
            assert store["running"] is True and store["contents"]["leader"], store
            assert store["registered"] == [f"{addrs['node1']}:2376", f"{addrs['node2']}:2376"], store
            assert store["overlays"] == ["ov"], store
        assert_engine_reader_agrees_with_the_cli(hosts, f"{LABEL}={status['lab']}")
        t0 = time.monotonic()
        verify = lab.labctl("verify", *args(lab, pb), check=False)
        t_verify = time.monotonic() - t0
        assert verify.returncode == 0 and "OK: 42/42" in verify.stdout, verify.stdout[-3000:]
        t0 = time.monotonic()
        again = lab.labctl("up", *args(lab, pb))
        t_again = time.monotonic() - t0
        assert "no changes" in again.stdout, again.stdout
        t0 = time.monotonic()
        down = lab.labctl("down", *args(lab, pb))
        t_down = time.monotonic() - t0
        if pb == "seed-overlay-consul":
            assert "store: store keys under docker/ removed" in down.stdout, down.stdout
            assert "store: consul stopped" in down.stdout, down.stdout
        assert_nothing_left(lab, hosts, f"{name} {pb}")
        print(f"\nmatrix {LABS[name][1]}/{LABS[name][2]} {pb} ({plane}): up {t_up:.1f}s, verify {t_verify:.1f}s, "
              f"up again {t_again:.1f}s, down {t_down:.1f}s")


REFUSED = [
    # engine lab, playbook text, what the refusal names
    ("imx13", "overlay: {control: kvstore}\nstore: {backend: etcd, data_dir: /var/lib/labctl/etcd}\n",
     "Docker Engine 26.1.5+dfsg1 has no cluster store (removed in 23.0)"),
    ("imx13", "store: {backend: consul, data_dir: /var/lib/labctl/consul}\noverlay: {control: kvstore}\n",
     "Docker Engine 26.1.5+dfsg1 has no cluster store (removed in 23.0)"),
    ("imx12", "store: {backend: consul, data_dir: /var/lib/labctl/consul}\noverlay: {control: kvstore}\n",
     "built without the Consul backend"),
    ("imxmix", "overlay: {control: kvstore}\nstore: {backend: etcd, data_dir: /var/lib/labctl/etcd}\n",
     "[node2] overlay.control kvstore: Docker Engine 26.1.5+dfsg1 has no cluster store"),
]


@pytest.mark.parametrize(("name", "head", "words"), REFUSED, ids=["13-kvstore-etcd", "13-kvstore-consul",
                                                                  "12-consul", "mixed-kvstore"])
def test_pairs_that_cannot_work_are_refused_before_any_change(labs, tmp_path_factory, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                              name: str, head: str, words: str) -> None:
    lab = sandbox(labs, tmp_path_factory, name)
    pb = tmp_path / "refused.yaml"
    pb.write_text(f"name: refused\n{head}networks:\n  ov: {{driver: overlay, subnet: 172.30.0.0/16}}\n"
                  "containers:\n  c1: {host: node1, networks: [ov]}\n  c3: {host: node2, networks: [ov]}\n")
    with connect(lab) as hosts:
        before = {h: sh(hosts, h, "docker network ls -q; docker ps -aq; cat /etc/docker/daemon.json 2>/dev/null"
                         ).stdout for h in NODES}
        res = lab.labctl("up", "-i", str(lab.inventory), "-p", str(pb), check=False)
        assert res.returncode == 2, res.stdout + res.stderr
        assert words in res.stderr and "nothing was changed" in res.stderr, res.stderr[-2000:]
        after = {h: sh(hosts, h, "docker network ls -q; docker ps -aq; cat /etc/docker/daemon.json 2>/dev/null"
                        ).stdout for h in NODES}
        assert after == before
        for daemon in ("consul", "etcd"):
            assert not sh(hosts, "store", f"pidof {daemon}").ok, f"{daemon} was started"


def phase_lines(stderr: str) -> list[str]:
    """The progress messages of a cold `up` (after the time and host columns), in order, without repeats."""
    seen: list[str] = []
    for line in stderr.splitlines():
        m = re.match(r"^\s*\d+\.\d+s (\S+)\s+(.+)$", line)
        if m and m.group(1) != "controller" and m.group(2)[:30] not in seen:
            seen.append(m.group(2)[:30])
    return seen


@pytest.mark.parametrize(("name", "pb"), [("imx11", "seed-overlay-consul"), ("imx13", "seed-overlay-swarm")],
                         ids=["consul-debian-11", "swarm-debian-13"])
def test_interrupted_up_converges_on_this_plane(labs, tmp_path_factory, name: str, pb: str) -> None:  # type: ignore[no-untyped-def]
    lab = sandbox(labs, tmp_path_factory, name)
    with connect(lab) as hosts:
        cold = lab.labctl("up", *args(lab, pb))
        lab.labctl("down", *args(lab, pb))
        phases = phase_lines(cold.stderr)
        assert len(phases) >= 5, cold.stderr
        step = max(1, len(phases) // (INTERRUPTS - 3))
        trials: list[tuple[str, signal.Signals, str | None, float | None]] = [
            (p, signal.SIGKILL, p, None) for p in phases[::step][:INTERRUPTS - 3]]
        rng = random.Random(22)
        trials += [(f"random {d:.2f}s", signal.SIGINT, None, d)
                    for d in (rng.uniform(0.3, 8.0) for _ in range(INTERRUPTS - len(trials)))]
        killed = 0
        for phase, sig, line, after in trials:
            why = f"{pb} on {name}: {sig.name} at {phase!r}"
            sent, err = interrupt(lab, sig, at_line=line, after=after, playbook=PB[pb])
            killed += sent
            assert "Traceback" not in err, f"{why}:\n{err[-3000:]}"
            res = lab.labctl("up", *args(lab, pb), "--wait", "60", check=False)
            assert res.returncode == 0, f"{why}: the next up failed\n{err[-1500:]}\n---\n{res.stderr[-3000:]}"
            assert "no changes" in lab.labctl("up", *args(lab, pb)).stdout, f"{why}: a second up changed something"
            verify = lab.labctl("verify", *args(lab, pb), check=False)
            assert verify.returncode == 0 and "OK: 42/42" in verify.stdout, f"{why}:\n{verify.stdout[-2000:]}"
            lab.labctl("down", *args(lab, pb))
            assert_nothing_left(lab, hosts, why)
        print(f"\n{pb} on {name}: {len(trials)} interrupted runs ({killed} signalled before the run ended by "
              "itself); all converged")
        assert len(trials) >= INTERRUPTS and killed >= INTERRUPTS - 2
