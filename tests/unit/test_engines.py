"""Engines from Debian's archive: the inventory field, the registry, the machine's archive found in its apt sources,
the cache (complete fetches only, a helper that does not run replaced by the machine's own, apt's refusal named),
and every parser of engine output on output captured from Docker 26.1.5 (Debian 13) beside 20.10.x."""

from __future__ import annotations

import http.server
import json
import os
import stat
import threading
from pathlib import Path

import pytest

from labctl import engines
from labctl.engines.debian import archive_url, sources_line
from labctl.errors import LabctlError, ValidationError
from labctl.executors import enginecache
from labctl.executors.hostfacts import parse_facts
from labctl.facts import answers
from labctl.model.inventory import parse_inventory
from labctl.plan import grade
from labctl.plan.controlplane import Engine, decide, kvstore_refusal
from labctl.plan.sandbox import HostFacts, SandboxFacts, plan_sandbox
from labctl.plan.status import parse_host_state
from labctl.planes.registry import plan_halves
from labctl.planes.swarm import plan as swarm_plan
from labctl.ui import Progress

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parents[2]


def inventory(text: str, source: str = "inv.yaml"):  # type: ignore[no-untyped-def]
    return parse_inventory("provider: sandbox\n" + text, source)


# ---------------------------------------------------------------- the inventory field


def test_engine_defaults_to_system_and_a_host_overrides_the_inventory_default() -> None:
    inv = inventory("engine: debian-13\nhosts:\n  store: {roles: [store]}\n  node1: {roles: [docker]}\n"
                    "  node2: {roles: [docker], engine: debian-12}\n")
    assert [(h.name, h.engine) for h in inv.hosts] == [("store", "system"), ("node1", "debian-13"),
                                                        ("node2", "debian-12")]
    plain = inventory("hosts:\n  node1: {roles: [docker]}\n")
    assert plain.host("node1").engine == "system"


def test_unknown_engine_and_engine_on_a_store_only_host_are_refused_together() -> None:
    with pytest.raises(ValidationError) as err:
        inventory("engine: debian-10\nhosts:\n  store: {roles: [store], engine: debian-11}\n"
                  "  node1: {roles: [docker], engine: docker-ce}\n", "lab.yaml")
    text = err.value.render()
    assert err.value.exit_code == 2 and len(err.value.problems) == 3
    assert "lab.yaml: engine: unknown engine 'debian-10'; allowed: debian-11, debian-12, debian-13, system" in text
    assert "lab.yaml: hosts.node1.engine: unknown engine 'docker-ce'" in text
    assert "lab.yaml: hosts.store.engine: only docker hosts run a Docker Engine" in text


@pytest.mark.parametrize(("name", "engines_seen"), [
    ("sandbox-consul.yaml", {"node1": "debian-11", "node2": "debian-11"}),
    ("sandbox-current.yaml", {"node1": "debian-13", "node2": "debian-13"}),
    ("sandbox-mixed.yaml", {"node1": "debian-12", "node2": "debian-13"}),
])
def test_shipped_engine_inventories(name: str, engines_seen: dict[str, str]) -> None:
    path = ROOT / "inventories" / name
    inv = parse_inventory(path.read_text(), str(path))
    assert {h.name: h.engine for h in inv.docker_hosts} == engines_seen


def test_registry_is_the_only_list_of_sources() -> None:
    assert engines.names() == ("debian-11", "debian-12", "debian-13", "system")
    assert engines.get("debian-11").release == "bullseye" and engines.get("debian-13").release == "trixie"
    assert "docker-cli" in engines.get("debian-13").packages   # Debian 13 split the client out of docker.io
    assert engines.store_tool_source("consul") is engines.get("debian-11")
    assert engines.store_tool_source("etcd") is None
    assert not engines.get("system").fetched


def test_a_host_with_another_engine_is_rebuilt() -> None:
    inv = inventory("underlay: {subnet: 198.18.7.0/24}\nhosts:\n  node1: {roles: [docker], engine: debian-13}\n")
    facts = SandboxFacts(state_subnet="198.18.7.0/24", switch=True, hosts={
        "node1": HostFacts("node1", running=True, address="198.18.7.11", roles=("docker",), sshd=True,
                           engine="debian-12")})
    actions = [(a.kind, a.reason) for a in plan_sandbox(inv, facts)]
    assert actions == [("destroy-host", "engine changed from debian-12 to debian-13"),
                       ("create-host", "engine changed from debian-12 to debian-13")]
    same = SandboxFacts(state_subnet="198.18.7.0/24", switch=True, hosts={
        "node1": HostFacts("node1", running=True, address="198.18.7.11", roles=("docker",), sshd=True,
                           engine="debian-13")})
    assert [a.kind for a in plan_sandbox(inv, same)] == ["keep-host"]


# ---------------------------------------------------------------- the machine's archive


def test_archive_from_this_machines_deb822_sources_skips_security() -> None:
    text = (DATA / "apt-sources-debian12.sources").read_text()
    assert "debian-security" in text
    url = archive_url(text)
    assert url is not None and url.startswith("http") and "security" not in url


def test_archive_from_one_line_sources_and_none_without_a_mirror() -> None:
    assert archive_url("# comment\ndeb http://mirror.example/debian-security bookworm-security main\n"
                       "deb [arch=amd64] http://mirror.example/debian bookworm main\n") == "http://mirror.example/debian"
    assert archive_url("deb cdrom:[Debian]/ bookworm main\n") is None
    assert sources_line("http://m/debian", "trixie") == \
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://m/debian trixie main\n"


# ---------------------------------------------------------------- the cache


def fake_engine(root: Path, runc_runs: bool) -> None:
    """A package tree like docker.io's, with scripts standing for the binaries (runc fails as Debian 13's does)."""
    for sub, name, body in (("usr/sbin", "dockerd", "echo 'Docker version 26.1.5+dfsg1, build 411e817'"),
                            ("usr/bin", "docker", "echo 'Docker version 26.1.5+dfsg1, build 411e817'"),
                            ("usr/bin", "containerd", "echo 'containerd 1.7.24'"),
                            ("usr/bin", "containerd-shim-runc-v2", "exit 1"),
                            ("usr/sbin", "runc", "echo 'runc version 1.1.15'" if runc_runs else
                             "echo \"$0: /lib/x86_64-linux-gnu/libc.so.6: version \\`GLIBC_2.38' not found "
                             "(required by $0)\" >&2; exit 1"),
                            ("usr/bin", "docker-init", "echo 'tini version 0.19.0'")):
        path = root / sub / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_a_helper_that_does_not_run_here_is_replaced_by_the_machines_own(tmp_path: Path) -> None:
    if not os.path.exists("/usr/sbin/runc"):
        pytest.skip("this machine has no runc (make deps installs docker.io, which brings it)")
    root = tmp_path / "x.tmp-1" / "root"
    fake_engine(root, runc_runs=False)
    got = enginecache._inspect("debian-13", "trixie", str(tmp_path / "x"), str(root), {"docker.io": "26"},
                               ("runc", "docker-init"))
    assert got.version == "Docker version 26.1.5+dfsg1, build 411e817"
    assert got.binaries["runc"] == "/usr/sbin/runc" and not (root / "usr/sbin/runc").exists()
    assert got.from_host == {"runc": "/usr/sbin/runc (Debian trixie's does not run here: version `GLIBC_2.38' "
                                     "not found)"}
    assert got.binaries["docker-init"] == str(tmp_path / "x" / "root" / "usr/bin/docker-init")
    assert got.path.startswith(f"{tmp_path}/x/root/usr/sbin:{tmp_path}/x/root/usr/bin:")


def test_only_complete_fetches_count_as_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(enginecache.CACHE_ENV, str(tmp_path))
    assert enginecache.cached("debian-13") is None
    group = tmp_path / "debian-13"
    fake_engine(group / "aaa" / "root", runc_runs=True)
    done = enginecache.Unpacked(name="debian-13", release="trixie", directory=str(group / "aaa"),
                                packages={"docker.io": "26"},
                                binaries={"dockerd": str(group / "aaa/root/usr/sbin/dockerd")})
    (group / "aaa" / "manifest.json").write_text(json.dumps(done.as_dict()))
    fake_engine(group / "bbb.tmp-999999" / "root", runc_runs=True)   # a killed fetch: never renamed
    (group / "bbb.tmp-999999" / "manifest.json").write_text(json.dumps(done.as_dict()))
    assert enginecache.cached("debian-13") == done
    os.unlink(group / "aaa/root/usr/sbin/dockerd")                     # a cache someone emptied by hand
    assert enginecache.cached("debian-13") is None


def test_markers_in_this_machines_dockerd() -> None:
    if not os.path.exists("/usr/sbin/dockerd"):
        pytest.skip("no dockerd on this machine (make deps installs docker.io)")
    backends, swarm = enginecache.markers("/usr/sbin/dockerd")
    assert "etcd" in backends and "consul" not in backends, "Debian 12's dockerd is built without Consul"
    assert swarm


class _NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/usr/bin/apt-get"),
                    reason="fetching writes the engine cache as root and runs apt-get")
def test_a_release_apt_cannot_fetch_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real apt against a mirror on loopback that has nothing: the error names the release and apt's words."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(enginecache.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(enginecache.MIRROR_ENV, f"http://127.0.0.1:{server.server_address[1]}/debian")
    try:
        with pytest.raises(LabctlError) as err:
            enginecache.fetch("debian-13", Progress(quiet=True))
    finally:
        server.shutdown()
        server.server_close()
    text = err.value.render()
    assert "Debian trixie" in text and "127.0.0.1" in text, text
    assert err.value.hint and enginecache.MIRROR_ENV in err.value.hint
    assert enginecache.cached("debian-13") is None


# ---------------------------------------------------------------- engine output, 20.10 and 26.1.5


def captured(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def test_facts_of_engine_26() -> None:
    f = parse_facts(captured("facts-node1-26.1.5.txt"), "node1", "seed-overlay-swarm")
    assert f.engine_version == "26.1.5+dfsg1" and f.hostname == "node1" and not f.consul_backend
    # Engine 23 and later: the engine ID is a UUID kept in /var/lib/docker/engine-id (20.10: a key.json hash)
    assert len(f.engine_id) == 36 and f.engine_id.count("-") == 4
    assert "eth1" in f.interfaces and f.images == frozenset({"labctl/busybox:latest"})
    swarm = f.planes["swarm"]
    assert swarm.state == "active" and swarm.manager and swarm.marker_lab == "seed-overlay-swarm"
    assert "ingress" in f.foreign_networks, "swarm's own ingress network is not the lab's"
    assert kvstore_refusal(f.engine_version, "etcd", f.consul_backend) == \
        "Docker Engine 26.1.5+dfsg1 has no cluster store (removed in 23.0)"
    decision = decide("auto", "etcd", [Engine("node1", f.engine_version, f.consul_backend),
                                       Engine("node2", "20.10.24+dfsg1", False)])
    assert decision.control == "swarm" and decision.problems == []
    assert decision.why == "auto: node1: Docker Engine 26.1.5+dfsg1 has no cluster store (removed in 23.0)"


@pytest.mark.parametrize(("name", "version", "scope"), [("status-node1.txt", "20.10.24+dfsg1", "global"),
                                                        ("status-node1-26.1.5.txt", "26.1.5+dfsg1", "swarm")])
def test_status_output_of_both_engines(name: str, version: str, scope: str) -> None:
    state = parse_host_state("node1", captured(name), "labctl.lab=seed-overlay", plan_halves(), vnis=False)
    assert state.engine == version and state.pending is False
    nets = state.networks
    assert nets["ov"]["Scope"] == scope and nets["ov"]["IPAM"]["Config"][0]["Subnet"] == "172.30.0.0/16"
    assert nets["mv"]["Driver"] == "macvlan" and nets["mv"]["Options"]["parent"] == "eth1"
    ctrs = state.containers
    assert ctrs["c1"]["NetworkSettings"]["Networks"]["mv"]["IPAMConfig"]["IPv4Address"] == "172.29.0.11"


def test_grade_objects_of_engine_26() -> None:
    objects = grade.objects_from(answers("node1", grade.object_facts(), captured("grade-node1-26.1.5.txt")))
    assert objects.engine == "26.1.5+dfsg1"
    assert {"ov", "mv", "bridge", "ingress"} <= set(objects.networks)
    assert {"c1", "c2"} <= set(objects.containers)


@pytest.mark.parametrize(("name", "manager"), [("swarm-facts-manager-20.10.24.txt", True),
                                               ("swarm-facts-manager-26.1.5.txt", True),
                                               ("swarm-facts-worker-26.1.5.txt", False)])
def test_swarm_facts_of_both_engines(name: str, manager: bool) -> None:
    f = swarm_plan.parse_facts("nodeX", captured(name))
    assert f.state == "active" and f.manager is manager and f.address.startswith("198.18.")
    assert f.marker_role == ("manager" if manager else "worker")
