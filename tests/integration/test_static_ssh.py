"""The static provider for real, as people reach machines: a static inventory (not the sandbox provider) points at
sandbox hosts that have a login user with sudo, whose docker hosts answer SSH only through a bastion (the store
host). labctl logs in as that user, runs what needs root through sudo, and reaches the docker hosts through the
bastion: the seed lab's up, verify, trace with captures, break and undo, grade and down, once with sudo that wants
no password and once with a password given in the environment, which must then be found nowhere. Also: an
ssh_config alias inventory, a user without sudo and an unknown host key (each refused with exit 2, nothing
changed)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.integration.conftest import Lab, make_lab, sh

LAB = "ssh24"
SUBNET = "198.18.61.0/24"
ADDR = {"store": "198.18.61.11", "node1": "198.18.61.12", "node2": "198.18.61.13"}
ROOT = Path(__file__).parents[2]
SEED = str(ROOT / "playbooks" / "seed-overlay.yaml")
PASSWORD = "Corr3ct-h0rse-b4ttery-24"    # the sandbox user's sudo password in the password phase


def sandbox_inventory(lab: Lab, sudo: str) -> None:
    lines = [f"name: {LAB}", "provider: sandbox", f"underlay: {{subnet: {SUBNET}}}",
             f"sandbox: {{login_user: student, sudo: {sudo}, bastion: store}}", "hosts:",
             "  store: {roles: [store]}", "  node1: {roles: [docker]}", "  node2: {roles: [docker]}"]
    lab.inventory.write_text("\n".join(lines) + "\n")


def reshape(lab: Lab, sudo: str) -> None:
    """The sandbox hosts made again with another sudo rule (`sandbox up` remakes hosts whose access changed)."""
    sandbox_inventory(lab, sudo)
    env = dict(lab.env, LABCTL_BECOME_PASS=PASSWORD) if sudo == "password" else lab.env
    res = subprocess.run([sys.executable, "-m", "labctl.cli", "sandbox", "up", "-i", str(lab.inventory)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr


def static_inventory(lab: Lab, path: Path, **ssh: str) -> Path:
    state = lab.state_root / LAB
    settings = {"user": "student", "become": "sudo", "key": str(state / "id_ed25519"),
                "known_hosts": str(state / "known_hosts"), "jump": "store", **ssh}
    text = (f"name: {LAB}\nprovider: static\nssh: {json.dumps(settings)}\nhosts:\n"
            + "".join(f"  {h}: {{roles: [{'store' if h == 'store' else 'docker'}], address: {a}}}\n"
                      for h, a in ADDR.items()))
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp(LAB)
    lab = make_lab(tmp, LAB, SUBNET, {"store": ["store"], "node1": ["docker"], "node2": ["docker"]})
    sandbox_inventory(lab, "passwordless")
    lab.labctl("sandbox", "down", "-i", str(lab.inventory))
    lab.labctl("sandbox", "up", "-i", str(lab.inventory))
    lab.playbook = Path(SEED)
    yield lab
    static = tmp / "static.yaml"
    if static.exists():
        env = dict(lab.env, LABCTL_BECOME_PASS=PASSWORD)
        subprocess.run([sys.executable, "-m", "labctl.cli", "down", "-i", str(static), "-p", SEED], env=env,
                       capture_output=True, timeout=300)
    lab.labctl("sandbox", "down", "-i", str(lab.inventory), check=False)


def static(lab: Lab) -> Path:
    return static_inventory(lab, lab.inventory.parent / "static.yaml")


def run(lab: Lab, *args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([sys.executable, "-m", "labctl.cli", *args], env=env or lab.env, capture_output=True,
                         text=True, timeout=300)
    if check and res.returncode != 0:
        raise AssertionError(f"labctl {' '.join(args)} exited {res.returncode}:\n{res.stdout}\n{res.stderr}")
    return res


def refused_directly(address: str) -> bool:
    try:
        with socket.create_connection((address, 22), timeout=3):
            return False
    except OSError:
        return True


def nothing_of_the_lab(hosts) -> None:  # type: ignore[no-untyped-def]
    for h in ("node1", "node2"):
        assert sh(hosts, h, "docker ps -aq").stdout.strip() == "", f"{h}: containers left"
        assert sorted(sh(hosts, h, "docker network ls --format '{{.Name}}'").stdout.split()) == \
            ["bridge", "host", "none"], f"{h}: networks left"
        assert not sh(hosts, h, "test -e /etc/docker/daemon.json").ok, f"{h}: daemon.json left"
        assert "labctl" not in sh(hosts, h, "iptables-save | grep -v 'sandbox bastion'").stdout
    assert not sh(hosts, "store", "start-stop-daemon --status --pidfile /run/labctl/etcd.pid").ok
    assert not sh(hosts, "store", "test -e /var/lib/labctl/etcd").ok, "the store's data goes with the lab"


def round_trips(stderr: str) -> dict[str, int]:
    line = next(x for x in stderr.splitlines() if x.startswith("round trips per host:"))
    return {h: int(n) for h, n in (p.strip().split() for p in line.split(":", 1)[1].split(","))}


def test_docker_hosts_answer_ssh_only_through_the_bastion(lab: Lab) -> None:
    assert refused_directly(ADDR["node1"]) and refused_directly(ADDR["node2"]), "docker hosts reachable directly"
    assert not refused_directly(ADDR["store"]), "the bastion answers"
    hosts = json.loads(run(lab, "hosts", "-i", str(static(lab)), "--json").stdout)["hosts"]
    by = {h["name"]: h for h in hosts}
    assert by["node1"]["user"] == "student" and by["node1"]["become"] == "sudo"
    assert by["node1"]["jump"]["name"] == "store" and by["store"]["jump"] is None


def test_seed_lab_as_a_sudo_user_through_the_bastion(lab: Lab, hosts, tmp_path) -> None:  # type: ignore[no-untyped-def]
    inv = str(static(lab))
    up = run(lab, "up", "-i", inv, "-p", SEED)
    assert "container c4: start" in up.stderr + up.stdout
    again = run(lab, "up", "-i", inv, "-p", SEED)
    assert "no changes" in again.stdout, again.stdout
    # what ran on the hosts ran as root, for the login user `student`
    assert sh(hosts, "node1", "docker inspect -f '{{.State.Running}}' c1").stdout.strip() == "true"
    env = dict(lab.env, LABCTL_ROUND_TRIPS="1")
    verdict = tmp_path / "verdict.json"
    res = run(lab, "verify", "-i", inv, "-p", SEED, "--json", str(verdict), env=env)
    data = json.loads(verdict.read_text())
    assert data["ok"] and data["summary"]["failed"] == 0 and data["summary"]["total"] >= 42
    trips = round_trips(res.stderr)
    # status in one round trip, then the probe helper, the script and their run (see docs/commands.md)
    assert trips["node1"] == trips["node2"] == 4 and trips["store"] == 1, trips

    pcaps = tmp_path / "pcap"
    trace = json.loads(run(lab, "trace", "c1", "c3", "-i", inv, "-p", SEED, "--pcap", str(pcaps), "--json").stdout)
    assert trace["received"] == trace["sent"] > 0
    node1_pcap = pcaps / "node1-eth1.pcap"
    assert node1_pcap.exists() and node1_pcap.stat().st_size > 24
    decoded = subprocess.run(["tcpdump", "-nr", str(node1_pcap)], capture_output=True, text=True).stdout
    assert "VXLAN" in decoded and f"{ADDR['node1']}" in decoded, decoded[:500]

    broke = run(lab, "break", "-i", inv, "-p", SEED, "vxlan-blocked")
    assert "broke seed-overlay" in broke.stdout
    bad = run(lab, "verify", "-i", inv, "-p", SEED, check=False)
    assert bad.returncode == 1 and "VXLAN (UDP 4789) is dropped on node2" in bad.stdout + bad.stderr
    assert "reverted" in run(lab, "break", "--undo", "-i", inv, "-p", SEED).stdout
    assert run(lab, "verify", "-i", inv, "-p", SEED).returncode == 0

    down = run(lab, "down", "-i", inv, "-p", SEED)
    assert "store keys under docker/ removed" in down.stdout
    nothing_of_the_lab(hosts)
    leftovers = subprocess.run("ls -A /tmp | grep '^.labctl-' || true", shell=True, capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", "staged uploads left in /tmp"


def test_grade_as_a_sudo_user(lab: Lab, hosts, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The student types the exercise's reference solution (here as root, through the sandbox's own login); the
    instructor grades through the static inventory."""
    env = dict(lab.env, INVENTORY=str(lab.inventory), LABCTL=f"{sys.executable} -m labctl.cli")
    solve = subprocess.run(["sh", str(ROOT / "exercises" / "solutions" / "user-bridge.sh")], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=300)
    try:
        assert solve.returncode == 0, solve.stderr
        out = tmp_path / "grade.json"
        res = run(lab, "grade", "-i", str(static(lab)), "-e", str(ROOT / "exercises" / "user-bridge.yaml"),
                  "--json", str(out))
        data = json.loads(out.read_text())
        assert data["points"] == data["max_points"] > 0, res.stdout
    finally:
        sh(hosts, "node1", "docker rm -f web1 web2 outsider; docker network rm web")


def test_seed_lab_with_a_sudo_password_that_is_found_nowhere(lab: Lab, hosts, tmp_path) -> None:  # type: ignore[no-untyped-def]
    reshape(lab, "password")
    inv = str(static(lab))
    nopw = run(lab, "up", "-i", inv, "-p", SEED, check=False)
    assert nopw.returncode == 2 and "LABCTL_BECOME_PASS" in nopw.stderr, nopw.stderr
    assert not sh(hosts, "node1", "test -e /etc/docker/daemon.json").ok, "refused before any change"

    seen: list[str] = []
    stop = threading.Event()

    def watch() -> None:        # every process's command line, while labctl runs
        while not stop.is_set():
            for p in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    if PASSWORD.encode() in p.read_bytes():
                        seen.append(str(p))
                except OSError:
                    pass
            stop.wait(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    env = dict(lab.env, LABCTL_BECOME_PASS=PASSWORD)
    outputs = []
    try:
        for args in (("up",), ("verify",), ("trace", "c1", "c4"), ("status",), ("down",)):
            res = run(lab, *args, "-i", inv, "-p", SEED, env=env)
            outputs += [res.stdout, res.stderr]
    finally:
        stop.set()
        watcher.join()
    assert seen == [], f"the password was in the command line of {seen}"
    assert not any(PASSWORD in o for o in outputs), "the password is in labctl's output"
    nothing_of_the_lab(hosts)
    # the hosts' files (their own directories under the sandbox state, and what they see as /var/lib/labctl,
    # /run, /etc/docker and /tmp), and the sandbox's logs
    grep = subprocess.run(["grep", "-r", "-l", "-a", "-F", PASSWORD, str(lab.state_root), str(tmp_path)],
                          capture_output=True, text=True)
    assert grep.stdout == "", f"the password is in {grep.stdout}"
    for h in ADDR:
        # the sandbox hosts share this machine's /tmp, where checkouts of this project (CI's /tmp/ci) hold this
        # very file: of /tmp, what labctl writes there (its staged uploads and downloads)
        found = sh(hosts, h, f"grep -r -l -a -F {PASSWORD} /var/lib/labctl /run /etc/docker /home /tmp/.labctl-* "
                             "2>/dev/null; true").stdout
        assert found.strip() == "", f"{h}: the password is in {found}"


def test_a_user_without_sudo_is_refused_before_anything_changes(lab: Lab, hosts) -> None:  # type: ignore[no-untyped-def]
    reshape(lab, "none")
    before = {h: sh(hosts, h, "docker ps -aq; docker network ls -q; ls -A /var/lib/labctl /etc/docker").stdout
              for h in ("node1", "node2")}
    res = run(lab, "up", "-i", str(static(lab)), "-p", SEED, check=False)
    assert res.returncode == 2, res.stderr
    assert "sudo as student refused" in res.stderr and "sudo group" in res.stderr, res.stderr
    after = {h: sh(hosts, h, "docker ps -aq; docker network ls -q; ls -A /var/lib/labctl /etc/docker").stdout
             for h in ("node1", "node2")}
    assert after == before
    assert not sh(hosts, "store", "start-stop-daemon --status --pidfile /run/labctl/etcd.pid").ok


def test_an_unknown_host_key_is_refused_and_accept_new_records_it(lab: Lab, tmp_path) -> None:
    reshape(lab, "passwordless")
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    inv = static_inventory(lab, tmp_path / "strict.yaml", known_hosts=str(empty))
    res = run(lab, "up", "-i", str(inv), "-p", SEED, check=False)
    assert res.returncode == 2, res.stderr
    assert f"unknown host key for {ADDR['store']}" in res.stderr
    assert f"ssh-keyscan -t ssh-ed25519 {ADDR['store']} >> {empty}" in res.stderr, res.stderr
    assert empty.read_text() == "", "nothing recorded without the opt-in"
    fresh = tmp_path / "fresh_known_hosts"
    inv = static_inventory(lab, tmp_path / "accept.yaml", known_hosts=str(fresh), host_keys="accept-new")
    run(lab, "status", "-i", str(inv), "-p", SEED)
    recorded = fresh.read_text()
    assert all(a in recorded for a in ADDR.values()), recorded
    ours = (lab.state_root / LAB / "known_hosts").read_text()
    assert sorted(recorded.split("\n")) == sorted(ours.split("\n")), "the keys recorded are the hosts' own"
    run(lab, "status", "-i", str(static_inventory(lab, tmp_path / "again.yaml", known_hosts=str(fresh))), "-p", SEED)


def test_an_ssh_config_alias_inventory_resolves(lab: Lab, tmp_path) -> None:
    state = lab.state_root / LAB
    config = tmp_path / "ssh_config"
    config.write_text("".join(
        f"Host lab-{h}\n  HostName {a}\n  User student\n  IdentityFile {state / 'id_ed25519'}\n"
        f"  UserKnownHostsFile {state / 'known_hosts'}\n" + ("" if h == "store" else "  ProxyJump lab-store\n")
        for h, a in ADDR.items()))
    inv = tmp_path / "alias.yaml"
    inv.write_text(f"name: {LAB}\nprovider: static\nssh: {{become: sudo, config: {config}}}\nhosts:\n"
                   + "".join(f"  {h}: {{roles: [{'store' if h == 'store' else 'docker'}], "
                             f"ssh: {{config_host: lab-{h}}}}}\n" for h in ADDR))
    hosts = {h["name"]: h for h in json.loads(run(lab, "hosts", "-i", str(inv), "--json").stdout)["hosts"]}
    n1 = hosts["node1"]
    assert (n1["address"], n1["user"], n1["port"]) == (ADDR["node1"], "student", 22)
    assert n1["key_file"] == str(state / "id_ed25519") and n1["jump"]["name"] == "store"
    assert n1["origins"]["address"] == f"ssh_config {config} (Host lab-node1)"
    assert n1["origins"]["become"] == "inventory ssh" and n1["origins"]["port"] == "default"
    text = run(lab, "hosts", "-i", str(inv)).stdout
    assert f"node1: address from ssh_config {config} (Host lab-node1)" in " ".join(text.split())
    # (no playbook: seed-overlay derives docker0 from addresses, which an alias gives only once resolved)
    status = json.loads(run(lab, "status", "-i", str(inv), "--all-labs", "--json").stdout)
    assert {h["name"] for h in status["hosts"]} == {"node1", "node2"}
    assert not any(h.get("error") for h in status["hosts"])
    assert os.path.exists(config)


def test_a_bastion_outside_the_inventory(lab: Lab, tmp_path) -> None:
    """`jump: user@host` that names no inventory host: the hosts behind it are reached through that machine, with
    their own key and known_hosts. Here the outside machine is the store host under its address, as root."""
    inv = tmp_path / "outside.yaml"
    state = lab.state_root / LAB
    inv.write_text(f"name: {LAB}\nprovider: static\nssh: {{user: student, become: sudo, key: {state / 'id_ed25519'}, "
                   f"known_hosts: {state / 'known_hosts'}, jump: 'root@{ADDR['store']}:22'}}\nhosts:\n"
                   + "".join(f"  {h}: {{roles: [docker], address: {ADDR[h]}}}\n" for h in ("node1", "node2")))
    hosts = {h["name"]: h for h in json.loads(run(lab, "hosts", "-i", str(inv), "--json").stdout)["hosts"]}
    assert hosts["node1"]["jump"]["user"] == "root" and hosts["node1"]["jump"]["address"] == ADDR["store"]
    env = dict(lab.env, LABCTL_ROUND_TRIPS="1")
    res = run(lab, "status", "-i", str(inv), "--all-labs", "--json", env=env)
    assert {h["name"] for h in json.loads(res.stdout)["hosts"]} == {"node1", "node2"}
    assert round_trips(res.stderr) == {"node1": 1, "node2": 1}
    ssh = run(lab, "ssh", "node2", "-i", str(inv), "--", "sudo -n id -u && hostname")
    assert ssh.stdout.split() == ["0", "node2"]
