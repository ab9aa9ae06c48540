"""Sandbox hosts reached the way real machines are (inventory field `sandbox:`): a login user besides root, with
sudo (passwordless, with a password, or none), and docker hosts that answer SSH only through a bastion.

Everything stays inside the sandbox host: its user lives in private copies of /etc/passwd, /etc/group,
/etc/shadow and /etc/sudoers that the host's PID 1 bind-mounts in its own mount namespace (the machine's files are
only read), with a home on a tmpfs of the host's. The bastion rule is an iptables rule in the host's own network
namespace. What is written under the host's state directory is a password *hash*, never the password.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from labctl.errors import LabctlError, PrerequisiteError
from labctl.executors import local
from labctl.model.inventory import Inventory
from labctl.model.providers.sandbox import SandboxAccess
from labctl.plan.sandbox import access_signature

LOGIN_UID = 2742           # the login user's uid and gid inside the sandbox hosts (unused on this machine: checked)
SUDO = "/usr/bin/sudo"
SUDOERS = "/etc/sudoers"
ETC_FILES = ("passwd", "group", "shadow", "sudoers", "hosts")   # the host's own copies (see HOST_INIT)
BASTION_COMMENT = "sandbox bastion"   # the rule's comment: `iptables -S` shows why SSH from outside is refused
SECURE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def access(inv: Inventory) -> SandboxAccess | None:
    return inv.sandbox_access


def check_prerequisites(inv: Inventory) -> None:
    acc = access(inv)
    if acc is None or acc.login_user is None:
        return
    if not os.access(SUDO, os.X_OK) or not os.path.exists(SUDOERS):
        raise PrerequisiteError("sandbox.login_user needs sudo on this machine (the sandbox hosts share its /usr; "
                                "only their /etc/sudoers is their own)",
                                hint="apt-get install sudo (or run `make apt`)")
    with open("/etc/passwd", encoding="utf-8") as fh:
        taken = {line.split(":")[2] for line in fh if line.count(":") >= 6}
    if str(LOGIN_UID) in taken:
        raise PrerequisiteError(f"uid {LOGIN_UID}, which sandbox login users get, is taken on this machine",
                                hint="remove sandbox.login_user from the inventory")


def password_hash(password: str) -> str:
    """SHA-512 crypt of the password, made by openssl with the password on its stdin (never in an argv)."""
    out = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password + "\n", capture_output=True,
                         text=True, check=False)
    if out.returncode != 0 or not out.stdout.startswith("$6$"):
        raise LabctlError(f"openssl passwd failed: {local.tail(out.stderr)}")
    return out.stdout.strip()


def sudoers(acc: SandboxAccess) -> str:
    lines = ["# sudoers of a labctl sandbox host (its own file, bind-mounted in its mount namespace)",
             "Defaults env_reset", f'Defaults secure_path="{SECURE_PATH}"', "Defaults !lecture",
             "root ALL=(ALL:ALL) ALL"]
    if acc.sudo == "passwordless":
        lines.append(f"{acc.login_user} ALL=(ALL:ALL) NOPASSWD: ALL")
    elif acc.sudo == "password":
        lines.append(f"{acc.login_user} ALL=(ALL:ALL) ALL")
    return "\n".join(lines) + "\n"


def write_login_files(hdir: str, acc: SandboxAccess, password: str | None, authorized_keys: str,
                      host: str, address: str) -> None:
    """The host's own /etc files with the login user added (and its own name in /etc/hosts, which sudo looks up),
    the user's key, and `login` (user and uid) that the host's init reads to make the home."""
    if acc.login_user is None:
        return
    if acc.sudo == "password" and not password:
        raise LabctlError("sandbox.sudo is 'password': give that password to `labctl sandbox up` the way labctl "
                          "takes it for sudo",
                          hint="LABCTL_BECOME_PASS=... labctl sandbox up (or --ask-become-pass)")
    user, uid = acc.login_user, LOGIN_UID
    etc = os.path.join(hdir, "etc")
    os.makedirs(etc, mode=0o755, exist_ok=True)
    secret = password_hash(password) if acc.sudo == "password" and password else "*"   # "*": key logins only
    copies = {
        "passwd": f"{user}:x:{uid}:{uid}:labctl sandbox login user:/home/{user}:/bin/bash\n",
        "group": f"{user}:x:{uid}:\n",
        "shadow": f"{user}:{secret}:20000:0:99999:7:::\n",
        "hosts": f"{address} {host}\n",
    }
    for name, extra in copies.items():
        with open(f"/etc/{name}", encoding="utf-8") as src:
            text = src.read()
        _write(os.path.join(etc, name), text + ("" if text.endswith("\n") else "\n") + extra,
               0o640 if name == "shadow" else 0o644)
    _write(os.path.join(etc, "sudoers"), sudoers(acc), 0o440)
    shutil.copyfile(authorized_keys, os.path.join(hdir, "login-keys"))
    _write(os.path.join(hdir, "login"), f"{user} {uid}\n", 0o644)


def _write(path: str, text: str, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, mode)


def hidden(inv: Inventory, host: str) -> bool:
    """Whether this host answers SSH only through the bastion."""
    return "behind=" in access_signature(inv, host)


def hide_behind_bastion(pid: int, address: str, bastion_address: str) -> None:
    """In the host's network namespace: refuse SSH from everywhere but the bastion (and the host itself)."""
    base = ["nsenter", "--target", str(pid), "--net", "--", "iptables", "-w", "5"]
    local.run(base + ["-I", "INPUT", "-p", "tcp", "--dport", "22", "!", "-s", f"{bastion_address}/32",
                      "-m", "comment", "--comment", BASTION_COMMENT,
                      "-j", "REJECT", "--reject-with", "tcp-reset"])
    local.run(base + ["-I", "INPUT", "-p", "tcp", "--dport", "22", "-s", f"{address}/32",
                      "-m", "comment", "--comment", BASTION_COMMENT, "-j", "ACCEPT"])


def sshd_answers_inside(pid: int, address: str) -> bool:
    """sshd of a hidden host, asked from inside its own network namespace (the controller is refused)."""
    probe = f"exec 3<>/dev/tcp/{address}/22"
    out = subprocess.run(["nsenter", "--target", str(pid), "--net", "--", "timeout", "2", "bash", "-c", probe],
                         capture_output=True, check=False)
    return out.returncode == 0
