"""The front door: where the inventory and playbook come from, `labctl` alone, and fab tasks that are labctl's
commands with the same options and help (run for real: `fab` and `labctl` as subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from labctl import cli, defaults
from labctl.errors import ValidationError
from labctl.fabtasks import argv_for, collection, options_of

ROOT = Path(__file__).parents[2]
BIN = Path(sys.executable).parent
SEED_INVENTORY = ROOT / "inventories" / "sandbox.yaml"
SEED_PLAYBOOK = ROOT / "playbooks" / "seed-overlay.yaml"
FABFILE = "from labctl.fabtasks import collection\n\nns = collection()\n"


def run(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in defaults.ENV.values()}
    return subprocess.run(argv, cwd=cwd, env={**clean, **env}, capture_output=True, text=True, timeout=60)


def project(tmp_path: Path, config: str | None) -> Path:
    (tmp_path / "fabfile.py").write_text(FABFILE)
    (tmp_path / "labs").mkdir()
    (tmp_path / "labs" / "inv.yaml").write_text(SEED_INVENTORY.read_text())
    (tmp_path / "labs" / "pb.yaml").write_text(SEED_PLAYBOOK.read_text())
    if config is not None:
        (tmp_path / "fabric.yaml").write_text(config)
    return tmp_path


def test_the_command_line_then_the_environment_then_fabric_yaml_then_the_shipped_files(tmp_path: Path) -> None:
    proj = project(tmp_path, "labctl:\n  inventory: labs/inv.yaml\n")
    sub = proj / "labs"
    assert defaults.resolve("inventory", "x.yaml", {}, sub) == defaults.Choice("x.yaml", "command line")
    env = {"LABCTL_INVENTORY": "e.yaml"}
    assert defaults.resolve("inventory", None, env, sub) == defaults.Choice("e.yaml", "$LABCTL_INVENTORY")
    inv = defaults.resolve("inventory", None, {}, sub)
    assert Path(inv.path).resolve() == (proj / "labs" / "inv.yaml").resolve(), "relative to fabric.yaml, from below"
    assert inv.origin.endswith("fabric.yaml")
    pb = defaults.resolve("playbook", None, {}, sub)
    assert pb.origin == "shipped default" and Path(pb.path).resolve() == SEED_PLAYBOOK.resolve(), \
        "fabric.yaml names no playbook: the shipped seed playbook"


def test_a_bad_labctl_section_is_refused_with_the_file_and_field(tmp_path: Path) -> None:
    proj = project(tmp_path, "labctl:\n  inventroy: labs/inv.yaml\n  playbook: 3\n")
    with pytest.raises(ValidationError) as err:
        defaults.resolve("inventory", None, {}, proj)
    text = err.value.render()
    assert "fabric.yaml: labctl.inventroy: unknown field; allowed: inventory, playbook" in text
    assert "labctl.playbook: must be a file path" in text
    res = run([str(BIN / "labctl"), "validate"], proj)
    assert res.returncode == 2 and "labctl.inventroy" in res.stderr


def test_bare_commands_say_which_files_they_use(tmp_path: Path) -> None:
    proj = project(tmp_path, "labctl:\n  inventory: labs/inv.yaml\n  playbook: labs/pb.yaml\n")
    res = run([str(BIN / "labctl"), "validate"], proj)
    assert res.returncode == 0, res.stderr
    first = res.stderr.splitlines()[0]
    assert first == "labctl validate: inventory labs/inv.yaml (fabric.yaml), playbook labs/pb.yaml (fabric.yaml)"
    res = run([str(BIN / "labctl"), "validate", "-p", "labs/pb.yaml"], proj, LABCTL_INVENTORY="labs/inv.yaml")
    assert res.stderr.splitlines()[0] == ("labctl validate: inventory labs/inv.yaml ($LABCTL_INVENTORY), playbook "
                                          "labs/pb.yaml (command line)")
    quiet = run([str(BIN / "labctl"), "-q", "validate"], proj)
    assert quiet.returncode == 0 and quiet.stderr == "", "--quiet: no line about the files"


def test_labctl_alone_lists_the_commands_by_group() -> None:
    alone = run([str(BIN / "labctl")], ROOT)
    helped = run([str(BIN / "labctl"), "help"], ROOT)
    assert alone.returncode == 2 and helped.returncode == 0 and alone.stdout == helped.stdout
    text = helped.stdout
    for group, names in cli.GROUPS.items():
        assert f"\n{group}:\n" in text
        for name in names:
            assert f"\n  {name} " in text, f"{name} listed under {group}"
    top = {words[0] for words, _, _ in cli.walk(cli.build_parser())} - {"help"}
    grouped = [n for names in cli.GROUPS.values() for n in names]
    assert sorted(grouped) == sorted(top), "every command is in exactly one group"
    assert all(len(line) <= 100 for line in text.splitlines()), "one short line each"
    verify = run([str(BIN / "labctl"), "help", "verify"], ROOT)
    assert verify.returncode == 0 and "--junit FILE" in verify.stdout
    assert run([str(BIN / "labctl"), "help", "nosuch"], ROOT).returncode == 2


TASKS = sorted(collection().task_names)


def test_a_task_for_every_command() -> None:
    expected = {"-".join(w) for w, p, _ in cli.walk(cli.build_parser())} - {"help", "ssh", "sandbox", "image"}
    assert set(TASKS) == expected


@pytest.mark.parametrize("task", TASKS)
def test_fab_help_for_every_task_has_labctls_options(task: str) -> None:
    res = run([str(BIN / "fab"), "--help", task], ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    parser = dict((("-".join(w)), p) for w, p, _ in cli.walk(cli.build_parser()))[task]
    for o in options_of(parser):
        assert f"--{o.flag}" in res.stdout, f"fab {task}: --{o.flag} missing"
        if o.help:
            assert o.help.split()[0] in res.stdout
    assert (parser.description or "").split()[0] in res.stdout
    assert not any(line.lstrip().startswith("-h") for line in res.stdout.splitlines()), "no task flag takes -h"


def test_fab_task_help_after_the_task_name() -> None:
    for argv in (["verify", "--help"], ["verify", "-h"], ["trace", "--help"]):
        res = run([str(BIN / "fab"), *argv], ROOT)
        assert res.returncode == 0 and "--inventory" in res.stdout and "needed value" not in res.stdout + res.stderr
    missing = run([str(BIN / "fab"), "trace", "--src", "c1"], ROOT)
    assert missing.returncode == 2 and "give --dst" in missing.stderr


def test_fab_passes_its_arguments_to_labctl(tmp_path: Path) -> None:
    proj = project(tmp_path, "labctl:\n  inventory: labs/inv.yaml\n  playbook: labs/pb.yaml\n")
    bare = run([str(BIN / "fab"), "validate"], proj)
    assert bare.returncode == 0, bare.stderr
    assert bare.stderr.splitlines()[0].endswith("inventory labs/inv.yaml (fabric.yaml), playbook labs/pb.yaml "
                                                "(fabric.yaml)")
    given = run([str(BIN / "fab"), "validate", "-p", "nosuch.yaml"], proj)
    assert given.returncode == 2 and "nosuch.yaml (command line)" in given.stderr, "exit codes are labctl's"


def test_task_arguments_become_the_labctl_command_line() -> None:
    parsers = {w: p for w, p, _ in cli.walk(cli.build_parser())}
    up = options_of(parsers[("up",)])
    assert argv_for(("up",), up, {"provision": "no", "inventory": "i.yaml"}) == [
        "up", "--inventory", "i.yaml", "--no-provision"]
    assert argv_for(("up",), up, {"provision": True, "quiet": True}) == ["--quiet", "up", "--provision"]
    brk = options_of(parsers[("break",)])
    assert argv_for(("break",), brk, {"scenario": "vxlan-blocked", "undo": False, "host": "node1"}) == [
        "break", "--host", "node1", "vxlan-blocked"]
    trace = options_of(parsers[("trace",)])
    argv = argv_for(("trace",), trace, {"src": "c1", "dst": "c3", "count": "2"})
    assert argv == ["trace", "--count", "2", "c1", "c3"]
    assert cli.parse_args(argv).count == 2, "and labctl's parser reads it back"
