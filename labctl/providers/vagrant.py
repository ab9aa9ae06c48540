"""Vagrant provider: the VMs of the repository's Vagrantfile, reached as `vagrant ssh-config` says.

SSH goes where Vagrant says (VirtualBox: 127.0.0.1 and a forwarded port on the NAT interface; libvirt: the VM's
management address). The lab itself never uses that path: the underlay is the private network, whose addresses the
inventory knows (store .10, nodeN .(10+N), as the Vagrantfile numbers them), and preflight checks that the
underlay interface holds them (every VirtualBox VM has 10.0.2.15 on its NAT interface, which must never be used).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

import paramiko

from labctl.errors import LabctlError
from labctl.executors.local import tail
from labctl.model.inventory import Inventory
from labctl.providers.base import Endpoint, Provider

SSH_CONFIG_TIMEOUT = 120


@dataclass(frozen=True)
class VagrantSSH:
    host: str
    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...]


def parse_ssh_config(text: str, project_dir: str) -> dict[str, VagrantSSH]:
    """`vagrant ssh-config` output (one `Host` block per machine) -> machine name -> SSH settings.

    paramiko's SSHConfig reads quoted values (Vagrant quotes IdentityFile when the path has spaces). Relative key
    paths are relative to the Vagrant project directory, where `vagrant ssh-config` ran."""
    config = paramiko.SSHConfig.from_text(text)
    result: dict[str, VagrantSSH] = {}
    for name in sorted(config.get_hostnames() - {"*"}):
        entry = config.lookup(name)
        keys = tuple(os.path.normpath(os.path.join(project_dir, os.path.expanduser(k)))
                     for k in entry.get("identityfile", []))
        result[name] = VagrantSSH(host=name, hostname=entry.get("hostname", name), port=int(entry.get("port", 22)),
                                  user=entry.get("user", "vagrant"), identity_files=keys)
    return result


def read_ssh_config(project_dir: str, names: list[str]) -> str:
    """Run `vagrant ssh-config NAME...` in the project directory; clear errors for the usual failures."""
    if not os.path.isfile(os.path.join(project_dir, "Vagrantfile")):
        raise LabctlError(f"no Vagrantfile in {project_dir}",
                          hint="set `vagrant: {dir: ...}` in the inventory to the directory of the Vagrantfile")
    try:
        res = subprocess.run(["vagrant", "ssh-config", *names], cwd=project_dir, capture_output=True, text=True,
                             stdin=subprocess.DEVNULL, timeout=SSH_CONFIG_TIMEOUT)
    except FileNotFoundError:
        raise LabctlError("`vagrant` is not installed on this machine",
                          hint="install Vagrant (https://developer.hashicorp.com/vagrant/install) and a provider "
                               "(VirtualBox or libvirt), then `vagrant up`") from None
    except subprocess.TimeoutExpired:
        raise LabctlError(f"`vagrant ssh-config` did not answer within {SSH_CONFIG_TIMEOUT}s in {project_dir}",
                          hint="run `vagrant status` there to see what Vagrant is waiting for") from None
    if res.returncode != 0:
        raise LabctlError(f"`vagrant ssh-config {' '.join(names)}` failed in {project_dir}:\n"
                          f"{tail(res.stderr or res.stdout)}",
                          hint="start the VMs first: `vagrant up` (LABCTL_NODES=N for more docker nodes)")
    return res.stdout


def endpoints(inv: Inventory) -> list[Endpoint]:
    assert inv.vagrant_dir is not None
    names = [h.name for h in inv.hosts]
    found = parse_ssh_config(read_ssh_config(inv.vagrant_dir, names), inv.vagrant_dir)
    missing = [n for n in names if n not in found]
    if missing:
        raise LabctlError(f"`vagrant ssh-config` has no machine {', '.join(missing)} (it has {', '.join(found)})",
                          hint="the Vagrantfile makes 'store' and node1..nodeN: set LABCTL_NODES and `vagrant up`")
    result = []
    for h in inv.hosts:
        s = found[h.name]
        # Vagrant itself connects with StrictHostKeyChecking no and UserKnownHostsFile /dev/null: a VM made
        # again has a new host key on the same forwarded port. labctl does the same for Vagrant VMs only.
        # labctl needs root (daemon.json, services, namespaces); the Vagrantfile authorizes Vagrant's key for root.
        result.append(Endpoint(name=h.name, address=s.hostname, port=s.port, user="root",
                               key_file=s.identity_files[0] if s.identity_files else None, known_hosts=None,
                               roles=h.roles, strict_host_keys=False))
    return result


class VagrantProvider(Provider):
    name = "vagrant"

    def endpoints(self, inv: Inventory) -> list[Endpoint]:
        return endpoints(inv)


PROVIDER = VagrantProvider()
