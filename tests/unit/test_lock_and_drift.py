"""Host locks (the script run for real with flock on this machine), drift and rollback plans, escaped progress."""

from __future__ import annotations

import fcntl
import io
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from labctl.model.inventory import load_inventory
from labctl.model.playbook import load_playbook
from labctl.plan.lab import (
    Existing,
    container_from_recipe,
    container_spec,
    network_from_recipe,
    network_spec,
    plan_containers,
    plan_drift,
    plan_restore,
    recipe,
    spec_hash,
)
from labctl.plan.lock import EXIT_BUSY, LOCK_DIR, PRIVATE_DIR, Holder, lock_script, parse_holder
from labctl.ui import Progress

ROOT = Path(__file__).resolve().parents[2]
INV = load_inventory(str(ROOT / "inventories" / "sandbox.yaml"))
SEED = load_playbook(str(ROOT / "playbooks" / "seed-overlay.yaml"), INV)
HOLDER = Holder(lab="seed-overlay", command="up", pid=4242, controller="laptop", since="2026-12-01T10:00:00Z")


# ---------------------------------------------------------------- holder records


def test_holder_record_round_trips_and_describes_the_run() -> None:
    assert parse_holder(HOLDER.to_json()) == HOLDER
    assert HOLDER.describe() == "lab 'seed-overlay' (`labctl up`, pid 4242 on laptop, since 2026-12-01T10:00:00Z)"


@pytest.mark.parametrize("text", ["", "garbage", "{}", '{"lab": "x"}', "[1, 2]", '{"lab": "x", "command": "up", '
                                  '"pid": "not a number", "controller": "h", "since": "t"}'])
def test_what_is_not_a_holder_record_is_none(text: str) -> None:
    assert parse_holder(text) is None


def test_a_long_holder_record_is_cut() -> None:
    long = Holder(lab="x" * 5000, command="up", pid=1, controller="c" * 5000, since="t").to_json()
    parsed = parse_holder(long)
    assert parsed is not None and len(parsed.describe()) < 250


# ---------------------------------------------------------------- the lock script, run for real


needs_flock = pytest.mark.skipif(shutil.which("flock") is None or shutil.which("bash") is None,
                                 reason="flock (util-linux) or bash is not installed on this machine")


class Run:
    """The lock script in bash with the host's directory moved under tmp_path; stdin held open like the SSH channel."""

    def __init__(self, tmp_path: Path, holder: Holder, wait: int = 0) -> None:
        script = lock_script(holder, wait).replace(PRIVATE_DIR, str(tmp_path / "labctl"))
        self.proc = subprocess.Popen(["bash", "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []

    def read_until_end_or_held(self) -> list[str]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("HELD"):
                break
        return self.lines

    def release(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.proc.wait(timeout=10)


@needs_flock
def test_second_run_is_busy_and_names_the_holder_until_the_first_releases(tmp_path: Path) -> None:
    first = Run(tmp_path, HOLDER)
    assert first.read_until_end_or_held() == ["LOCKED ", "HELD"]
    other = Holder("other", "down", 7, "ci", "2026-12-01T11:00:00Z")
    second = Run(tmp_path, other)
    lines = second.read_until_end_or_held()
    assert second.proc.wait(timeout=10) == EXIT_BUSY
    assert len(lines) == 1 and lines[0].startswith("BUSY ") and parse_holder(lines[0][5:]) == HOLDER
    assert first.release() == 0
    assert not (tmp_path / "labctl" / "locks" / "host.lock.holder").exists(), "a clean release removes the record"
    third = Run(tmp_path, other)
    assert third.read_until_end_or_held() == ["LOCKED ", "HELD"], "free again, and no stale record"
    assert third.release() == 0
    assert oct((tmp_path / "labctl").stat().st_mode & 0o777) == "0o700"
    lock = tmp_path / "labctl" / LOCK_DIR.removeprefix(PRIVATE_DIR).strip("/") / "host.lock"
    assert lock.exists(), "the lock file is inside the root-only directory, where the script put it"


@needs_flock
def test_a_killed_holder_leaves_a_stale_record_not_a_lock(tmp_path: Path) -> None:
    first = Run(tmp_path, HOLDER)
    first.read_until_end_or_held()
    first.proc.send_signal(signal.SIGKILL)  # the controller died: sshd kills the shell the same way
    first.proc.wait(timeout=10)
    assert first.proc.stdin is not None
    first.proc.stdin.close()
    # the `cat` child may outlive its shell for a moment, holding fd 9: wait for EOF on its stdin (just closed)
    second = Run(tmp_path, Holder("other", "up", 8, "ci", "t"), wait=10)
    lines = second.read_until_end_or_held()
    assert lines[-1] == "HELD" and parse_holder(lines[-2][len("LOCKED "):]) == HOLDER, lines
    second.release()


@needs_flock
def test_waiting_run_gives_up_with_timeout_naming_the_holder(tmp_path: Path) -> None:
    first = Run(tmp_path, HOLDER)
    first.read_until_end_or_held()
    second = Run(tmp_path, Holder("other", "up", 8, "ci", "t"), wait=1)
    lines = second.read_until_end_or_held()
    assert second.proc.wait(timeout=10) == EXIT_BUSY
    assert [line.split(" ", 1)[0] for line in lines] == ["BUSY", "TIMEOUT"]
    assert parse_holder(lines[1][len("TIMEOUT "):]) == HOLDER
    first.release()


@needs_flock
def test_a_holder_caught_before_it_wrote_its_record_is_still_named(tmp_path: Path) -> None:
    """The gap between taking the flock and writing the record (seen in the two-ups integration test)."""
    locks = tmp_path / "labctl" / "locks"
    locks.mkdir(parents=True)
    with open(locks / "host.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        timer = threading.Timer(0.4, lambda: (locks / "host.lock.holder").write_text(HOLDER.to_json() + "\n"))
        timer.start()
        second = Run(tmp_path, Holder("other", "up", 8, "ci", "t"))
        lines = second.read_until_end_or_held()
        assert second.proc.wait(timeout=10) == EXIT_BUSY
        timer.join()
    assert lines[0].startswith("BUSY ") and parse_holder(lines[0][5:]) == HOLDER, lines


def test_holder_text_cannot_break_out_of_the_script() -> None:
    evil = Holder(lab="x'; touch /pwned; echo '", command="up", pid=1, controller="$(reboot)", since="`id`")
    script = lock_script(evil, 0)
    assert "touch /pwned" in script  # recorded as data ...
    assert "printf '%s\\n' '{" in script and "'\"'\"'" in script  # ... inside one single-quoted argument


# ---------------------------------------------------------------- drift


def existing_for(pb_nets: dict[str, list[str]], pb_ctrs: dict[str, list[str]]
                 ) -> tuple[dict[str, dict[str, Existing]], dict[str, dict[str, Existing]]]:
    nets = {h: {n: Existing("x") for n in names} for h, names in pb_nets.items()}
    ctrs = {h: {n: Existing("x") for n in names} for h, names in pb_ctrs.items()}
    return nets, ctrs


def test_drift_removes_what_the_playbook_no_longer_has_and_nothing_else() -> None:
    nets, ctrs = existing_for({"node1": ["ov", "mv", "old"], "node2": ["ov", "mv"]},
                              {"node1": ["c1", "c2", "c5"], "node2": ["c3", "c4", "c1"]})
    ctr_steps, net_steps = plan_drift(SEED, nets, ctrs)
    removed = [(s.host, s.what) for s in ctr_steps if s.what.startswith("container ")]
    assert removed == [("node1", "container c5"), ("node2", "container c1")], "c1 belongs on node1, not node2"
    attached = [(s.host, s.what) for s in ctr_steps if s.what.startswith("containers on")]
    assert attached == [("node1", "containers on old")]
    assert [(s.host, s.what, s.entry) for s in net_steps] == [("node1", "network old", "networks.old")]
    assert net_steps[0].reason == "not in the playbook: removed"


def test_no_drift_when_the_hosts_have_exactly_the_playbook() -> None:
    nets, ctrs = existing_for({"node1": ["ov", "mv"], "node2": ["ov", "mv"]},
                              {"node1": ["c1", "c2"], "node2": ["c3", "c4"]})
    assert plan_drift(SEED, nets, ctrs) == ([], [])


# ---------------------------------------------------------------- rollback from recorded specs


def recorded(pb_obj: str, host: str) -> Existing:
    if pb_obj.startswith("c"):
        c = SEED.container(pb_obj)
        spec = container_spec(c)
        return Existing(spec_hash(spec), recipe({"name": c.name, "host": c.host, **spec}))
    net = SEED.network(pb_obj)
    spec = network_spec(net, host)
    return Existing(spec_hash(spec), recipe({"name": net.name, **spec}))


def test_recipes_give_back_the_objects_they_were_made_from() -> None:
    for c in SEED.containers:
        back = container_from_recipe(recorded(c.name, c.host).recipe)
        assert back is not None and container_spec(back) == container_spec(c) and back.host == c.host
    for net in SEED.networks:
        back_net = network_from_recipe(recorded(net.name, "node1").recipe)
        assert back_net is not None and network_spec(back_net, "node1") == network_spec(net, "node1")
    assert container_from_recipe("") is None and network_from_recipe('{"name": 1}') is None


def test_restore_brings_back_exactly_what_the_run_removed_or_changed() -> None:
    before_nets = {h: {"ov": recorded("ov", h), "mv": recorded("mv", h)} for h in ("node1", "node2")}
    before_ctrs = {"node1": {"c1": recorded("c1", "node1"), "c2": recorded("c2", "node1")},
                   "node2": {"c3": recorded("c3", "node2")}}
    after_nets = {"node1": {"mv": recorded("mv", "node1")}, "node2": {"mv": recorded("mv", "node2")}}  # ov gone
    after_ctrs = {"node1": {"c1": Existing("changed"), "c2": recorded("c2", "node1")}, "node2": {}}
    steps, lost = plan_restore(SEED, before_nets, before_ctrs, after_nets, after_ctrs)
    assert lost == []
    what = [(s.host, s.what) for s in steps]
    assert what == [("node1", "network ov"), ("node1", "container c1"), ("node2", "container c3")], \
        "the overlay once (it spans the hosts), then the changed and the removed container; c2 was untouched"
    assert "docker network create --driver overlay" in steps[0].command
    c1 = steps[1].command
    assert c1 is not None and c1.startswith("docker rm -f c1") and "docker network disconnect -f ov c1" in c1
    assert "--ip 172.29.0.11" in c1 and "docker stop" not in c1


def test_restore_names_what_has_no_recorded_spec() -> None:
    steps, lost = plan_restore(SEED, {}, {"node1": {"c1": Existing("x", "")}}, {}, {"node1": {}})
    assert steps == [] and lost == ["container c1 on node1 (no recorded spec)"]


def test_a_stopped_container_is_restored_stopped() -> None:
    before = {"node1": {"c2": Existing(recorded("c2", "node1").spec, recorded("c2", "node1").recipe, False)}}
    steps, _ = plan_restore(SEED, {}, before, {}, {"node1": {}})
    assert steps[0].command is not None and steps[0].command.endswith("&& docker stop c2")


def test_a_container_whose_run_or_connect_fails_is_removed_not_left_with_the_new_label() -> None:
    changed = {"node1": {"c1": Existing("old-spec")}}
    steps = {s.what: s for s in plan_containers(SEED, changed) if s.host == "node1"}
    for what in ("container c1", "container c2"):  # recreated, created
        step = steps[what]
        assert step.command is not None and "docker network connect" in step.command
        assert step.cleanup is not None and step.cleanup.startswith(f"docker rm -f {what.split()[1]} ")
        assert "docker network disconnect -f ov" in step.cleanup, "the overlay endpoint in the store goes too"


# ---------------------------------------------------------------- progress lines


def test_progress_prints_user_text_verbatim_not_as_markup() -> None:
    out = io.StringIO()
    Progress(stream=out).step("[bold]node1", "Error: [/] [red]x[/red] exists")
    assert "[bold]node1" in out.getvalue() and "Error: [/] [red]x[/red] exists" in out.getvalue()

