from __future__ import annotations

import io
import shutil
import tarfile

import pytest

from labctl import cli
from labctl.executors.images import archive_from_path, busybox_rootfs
from labctl.executors.services import Service, SupervisedProcess
from labctl.model.inventory import parse_inventory

STATIC = """
provider: static
ssh: {user: admin, key: /k/id}
hosts:
  a: {roles: [docker], address: 192.0.2.5, ssh: {port: 2222}}
"""


def test_ssh_argv_keeps_command_after_destination() -> None:
    inv = parse_inventory(STATIC, "s.yaml")
    argv = cli.ssh_argv(inv, "a", ["docker", "ps", "-a"])
    assert argv[-3:] == ["--", "admin@192.0.2.5", "docker ps -a"]
    assert argv[1:3] == ["-p", "2222"] and "/k/id" in argv


def test_parse_args_splits_remote_command() -> None:
    args = cli.parse_args(["ssh", "node1", "-i", "x.yaml", "--", "docker", "run", "--rm", "img"])
    assert args.host == "node1" and args.inventory == "x.yaml"
    assert args.remote_command == ["docker", "run", "--rm", "img"]


def test_unknown_host_for_ssh_is_bad_input(tmp_path, capsys) -> None:
    p = tmp_path / "s.yaml"
    p.write_text(STATIC)
    assert cli.main(["ssh", "nope", "-i", str(p)]) == 2
    assert "no host 'nope'; hosts: a" in capsys.readouterr().err


def test_hosts_json_for_static(tmp_path, capsys) -> None:
    import json
    p = tmp_path / "s.yaml"
    p.write_text(STATIC)
    assert cli.main(["hosts", "--json", "-i", str(p)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["hosts"] == [{"name": "a", "address": "192.0.2.5", "port": 2222, "user": "admin", "key_file": "/k/id",
                             "known_hosts": None, "roles": ["docker"], "strict_host_keys": True,
                             "host_keys": "strict", "become": None, "jump": None,
                             "origins": {"address": "inventory hosts.a.address", "user": "inventory ssh",
                                         "port": "inventory hosts.a.ssh", "key_file": "inventory ssh"},
                             "engine": "system"}]


@pytest.mark.skipif(shutil.which("busybox") is None, reason="busybox-static not installed")
def test_busybox_rootfs_is_deterministic_and_has_ping() -> None:
    a, b = busybox_rootfs("x:1"), busybox_rootfs("x:1")
    assert a.digest == b.digest
    with tarfile.open(fileobj=io.BytesIO(a.data)) as tar:
        names = tar.getnames()
    assert {"bin/busybox", "bin/sh", "bin/ping", "etc/passwd"} <= set(names)


def test_archive_from_dir_and_rootfs_tar_needs_tag(tmp_path) -> None:
    (tmp_path / "web" / "bin").mkdir(parents=True)
    (tmp_path / "web" / "bin" / "hello").write_text("hi")
    img = archive_from_path(str(tmp_path / "web"), None)
    assert img.tag == "labctl/web:latest" and img.kind == "rootfs"
    tar_path = tmp_path / "rootfs.tar"
    tar_path.write_bytes(img.data)
    with pytest.raises(Exception, match="say which name it gets"):
        archive_from_path(str(tar_path), None)


def test_supervised_start_command_quotes_arguments() -> None:
    cmd = SupervisedProcess().start_command(Service("etcd", argv=("/usr/bin/etcd", "--name", "a b; rm -rf /")))
    assert "'a b; rm -rf /'" in cmd and "--pidfile /run/labctl/etcd.pid" in cmd


def test_host_text_is_printed_literally_never_as_emoji_codes() -> None:
    """rich turns `:cd:` into an emoji by default; a MAC address 12:71:13:cd:47:c9 must stay what it is."""
    import io

    from labctl.ui import Progress

    out = io.StringIO()
    Progress(stream=out).step("node1", "veth 12:71:13:cd:47:c9 [bold]x[/bold]")
    assert "12:71:13:cd:47:c9 [bold]x[/bold]" in out.getvalue()


def test_ctrl_c_while_the_parsers_are_built_ends_quietly(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    """Seen in CI: a SIGINT 0.3 s after start hit argparse on a loaded machine and printed a traceback."""
    from labctl.commands import parser

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(parser, "build_parser", interrupted)
    monkeypatch.setattr(cli, "build_parser", interrupted, raising=False)
    assert cli.main(["validate"]) == 130
    assert capsys.readouterr().err == "interrupted\n"
