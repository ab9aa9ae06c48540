"""How a static inventory's SSH settings become endpoints: precedence between the inventory and an ssh_config alias,
where each value came from, bastions, sudo's wrapper and refusals, and the host-key policies."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import paramiko
import pytest

from labctl.errors import HostsFailed
from labctl.executors import remote
from labctl.executors.remote import AcceptNew, AccessRefused, RefuseUnknown, become_command, settle, sudo_refusal
from labctl.model.inventory import parse_inventory
from labctl.providers import static
from labctl.views.lab import ssh_text

SSH_CONFIG = """\
Host lab-node1
  HostName 192.0.2.21
  Port 2222
  User debian
  IdentityFile ~/.ssh/lab_key
  UserKnownHostsFile ~/.ssh/lab_known_hosts
  ProxyJump admin@bastion.example.net:2200

Host lab-node2
  HostName 192.0.2.22
  User ubuntu

Host *
  User nobody-from-star
"""


def inventory(tmp_path: Path, body: str) -> str:
    (tmp_path / "ssh_config").write_text(SSH_CONFIG)
    path = tmp_path / "inv.yaml"
    path.write_text(body.replace("CONFIG", str(tmp_path / "ssh_config")))
    return str(path)


def endpoints(tmp_path: Path, body: str) -> dict[str, static.Endpoint]:
    inv = parse_inventory(Path(inventory(tmp_path, body)).read_text(), inventory(tmp_path, body))
    return {ep.name: ep for ep in static.endpoints(inv)}


def test_alias_fills_what_the_inventory_leaves_unset_and_says_where_each_value_came_from(tmp_path: Path) -> None:
    eps = endpoints(tmp_path, "provider: static\nssh: {config: CONFIG, become: sudo}\nhosts:\n"
                              "  node1: {roles: [docker], ssh: {config_host: lab-node1, port: 22}}\n"
                              "  node2: {roles: [store], ssh: {config_host: lab-node2, user: admin}}\n")
    n1, n2 = eps["node1"], eps["node2"]
    assert (n1.address, n1.port, n1.user) == ("192.0.2.21", 22, "debian")       # port: the inventory wins
    assert n1.key_file == os.path.expanduser("~/.ssh/lab_key")
    assert os.path.expanduser(n1.known_hosts or "") == os.path.expanduser("~/.ssh/lab_known_hosts")
    assert n1.jump is not None and (n1.jump.user, n1.jump.address, n1.jump.port) == ("admin", "bastion.example.net",
                                                                                     2200)
    origins = dict(n1.origins)
    assert origins["port"] == "inventory hosts.node1.ssh"
    assert origins["user"].startswith("ssh_config ") and origins["user"].endswith("(Host lab-node1)")
    assert origins["address"].endswith("(Host lab-node1)") and origins["become"] == "inventory ssh"
    assert (n2.address, n2.user, n2.port) == ("192.0.2.22", "admin", 22)
    assert dict(n2.origins)["user"] == "inventory hosts.node2.ssh" and n2.jump is None
    assert ssh_text(n1) == "debian@192.0.2.21:22 (sudo) via admin@bastion.example.net:2200"


def test_an_inventory_host_as_bastion_is_that_hosts_own_endpoint(tmp_path: Path) -> None:
    eps = endpoints(tmp_path, "provider: static\nssh: {user: admin, become: sudo, jump: gw}\nhosts:\n"
                              "  gw: {roles: [store], address: 192.0.2.10, ssh: {port: 2022}}\n"
                              "  node1: {roles: [docker], address: 192.0.2.11}\n")
    assert eps["gw"].jump is None                      # the bastion's inherited `jump: gw` means: directly
    jump = eps["node1"].jump
    assert jump is not None and (jump.name, jump.address, jump.port) == ("gw", "192.0.2.10", 2022)


def test_without_an_alias_nothing_is_read_from_any_ssh_config(tmp_path: Path) -> None:
    eps = endpoints(tmp_path, "provider: static\nssh: {config: CONFIG}\nhosts:\n"
                              "  node1: {roles: [docker], address: 192.0.2.11}\n")
    assert eps["node1"].user == "root" and dict(eps["node1"].origins)["user"] == "default"


def test_a_missing_ssh_config_is_an_input_error_naming_the_field(tmp_path: Path) -> None:
    body = "provider: static\nhosts:\n  node1: {roles: [docker], ssh: {config_host: x, config: /nonexistent/cfg}}\n"
    with pytest.raises(static.ValidationError) as err:
        endpoints(tmp_path, body)
    assert "hosts.node1.ssh.config" in err.value.render() and "/nonexistent/cfg" in err.value.render()


def test_become_wraps_the_command_so_that_the_shell_runs_it_whole_as_root() -> None:
    cmd = "echo \"$HOME\" && id -u > /tmp/x; cat <<'E'\nq'uote\nE"
    wrapped = become_command(cmd, "student", password=False)
    argv = shlex.split(wrapped)
    assert argv[:2] == ["sudo", "-n"] and argv[-3:] == ["/bin/bash", "-lc", cmd]
    with_pw = shlex.split(become_command(cmd, "student", password=True))
    assert with_pw[1:4] == ["-S", "-p", remote.BECOME_PROMPT] and with_pw[-1] == cmd
    assert "student" not in with_pw          # sudo knows the user from the login; nothing else is needed


def test_the_wrapper_runs_through_a_real_shell(tmp_path: Path) -> None:
    # what the remote shell sees, with `sudo ... --` cut off: the command comes out byte for byte
    cmd = "printf '%s|' \"a b\" 'c$d' \"$(echo e)\"; echo"
    inner = shlex.split(become_command(cmd, "u", password=False))
    out = subprocess.run(inner[inner.index("--") + 1:], capture_output=True, text=True, check=True).stdout
    assert out == "a b|c$d|e|\n"


@pytest.mark.parametrize(("stderr", "fix"), [
    ("sudo: a password is required\n", "LABCTL_BECOME_PASS"),
    ("sudo: 3 incorrect password attempts\n", "refused the password"),
    ("student is not in the sudoers file.\n", "sudo group"),
    ("Sorry, user student may not run sudo on node1.\n", "sudo group"),
    ("bash: line 1: sudo: command not found\n", "apt-get install sudo"),
])
def test_sudo_refusals_are_told_apart_from_a_failing_command(stderr: str, fix: str) -> None:
    assert fix in (sudo_refusal(stderr) or "")


def test_a_failing_command_is_not_a_refusal() -> None:
    assert sudo_refusal("Error response from daemon: network ov not found\n") is None


def test_refused_access_on_every_host_exits_2_and_names_each_host() -> None:
    outcomes = {"node1": AccessRefused("[node1] sudo as student refused", hint="fix one"),
                "node2": AccessRefused("[node2] unknown host key", hint="fix two")}
    with pytest.raises(HostsFailed) as err:
        settle(outcomes, "preflight")
    assert err.value.exit_code == 2
    text = err.value.render()
    assert "[node1]" in text and "fix one" in text and "fix two" in text


def test_a_failure_beside_a_refusal_is_exit_1() -> None:
    outcomes = {"node1": AccessRefused("[node1] sudo refused"), "node2": RuntimeError("boom")}
    with pytest.raises(HostsFailed) as err:
        settle(outcomes, "preflight")
    assert err.value.exit_code == 1


def _endpoint(tmp_path: Path, policy: str) -> static.Endpoint:
    return static.Endpoint(name="node1", address="192.0.2.11", port=2222, user="root", key_file=None,
                           known_hosts=str(tmp_path / "kh"), roles=("docker",), host_keys=policy)


def test_an_unknown_host_key_is_refused_with_the_line_to_check_it(tmp_path: Path) -> None:
    key = paramiko.Ed25519Key.generate() if hasattr(paramiko.Ed25519Key, "generate") else paramiko.ECDSAKey.generate()
    with pytest.raises(AccessRefused) as err:
        RefuseUnknown(_endpoint(tmp_path, "strict")).missing_host_key(paramiko.SSHClient(), "[192.0.2.11]:2222",
                                                                       key)
    assert "[node1] unknown host key" in err.value.message and "SHA256:" in err.value.message
    assert f"ssh-keyscan -p 2222 -t {key.get_name()} 192.0.2.11 >> {tmp_path / 'kh'}" in (err.value.hint or "")
    assert not (tmp_path / "kh").exists()


def test_accept_new_records_the_key_where_paramiko_finds_it_again(tmp_path: Path) -> None:
    key = paramiko.ECDSAKey.generate()
    client = paramiko.SSHClient()
    AcceptNew(_endpoint(tmp_path, "accept-new")).missing_host_key(client, "[192.0.2.11]:2222", key)
    again = paramiko.HostKeys(str(tmp_path / "kh"))
    assert again.lookup("[192.0.2.11]:2222")[key.get_name()] == key


def _read_until(fd: int, want: bytes, timeout: float = 20) -> bytes:
    import select
    got = b""
    deadline = time.monotonic() + timeout
    while want not in got and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            got += chunk
    return got


def test_ask_become_pass_prompts_on_the_terminal_without_echo(tmp_path: Path) -> None:
    import pty
    inv = tmp_path / "inv.yaml"
    inv.write_text("provider: static\nssh: {user: admin, become: sudo}\nhosts:\n"
                   "  node1: {roles: [docker], address: 192.0.2.11}\n")
    leader, follower = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2]))
    env.pop("LABCTL_BECOME_PASS", None)
    proc = subprocess.Popen([sys.executable, "-m", "labctl.cli", "-K", "hosts", "-i", str(inv)], stdin=follower,
                            stdout=follower, stderr=follower, env=env, close_fds=True)
    os.close(follower)
    try:
        assert b"sudo password (BECOME): " in _read_until(leader, b"(BECOME): ")
        os.write(leader, b"s3cret-typed\n")
        rest = _read_until(leader, b"admin@192.0.2.11")
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        os.close(leader)
    assert b"admin@192.0.2.11:22 (sudo)" in rest and b"s3cret-typed" not in rest


def test_ask_become_pass_without_a_terminal_is_bad_input(tmp_path: Path) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text("provider: static\nhosts:\n  node1: {roles: [docker], address: 192.0.2.11}\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2]))
    res = subprocess.run([sys.executable, "-m", "labctl.cli", "-K", "hosts", "-i", str(inv)],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env)
    assert res.returncode == 2 and "LABCTL_BECOME_PASS" in res.stderr
