"""Vagrant VMs: the Vagrantfile's private network numbers them; `vagrant ssh-config` says how to reach them."""

from __future__ import annotations

import ipaddress
import os

from labctl.model.checks import Collector, join, short
from labctl.model.providers.base import ProviderRules

DEFAULT_SUBNET = "192.168.56.0/24"   # the Vagrantfile's private network (LABCTL_SUBNET)
STORE_OFFSET = 10                      # as the Vagrantfile numbers its VMs: store .10, nodeN .(10+N)


class Vagrant(ProviderRules):
    name = "vagrant"
    subnet_default = DEFAULT_SUBNET
    host_ssh = False
    own_fields = ("vagrant",)
    own_schema = {"vagrant": {"type": "object", "properties": {"dir": {"type": "string", "minLength": 1}},
                              "additionalProperties": False,
                              "description": "where the Vagrantfile is, relative to this file (default '..')"}}
    summary = "Vagrant reads"
    macvlan_hint = ("macvlan frames between the hosts are dropped: VirtualBox NICs need promiscuous mode "
                    "`allow-all` for macvlan (see the Vagrantfile)")

    def default_address(self, c: Collector, host: str, fld: str,
                        subnet: ipaddress.IPv4Network | None) -> str | None:
        """The private-network address the Vagrantfile gives a VM of this name: store .10, nodeN .(10+N)."""
        if subnet is None:
            return None
        if host == "store":
            offset = STORE_OFFSET
        elif host.startswith("node") and host[4:].isdigit() and int(host[4:]) > 0:
            offset = STORE_OFFSET + int(host[4:])
        else:
            c.missing(join(fld, "address"), f"needed for {short(host)}: the Vagrantfile names its VMs 'store' and "
                                        "'node1'..'nodeN' and numbers only those; give the VM's private-network "
                                        "address")
            return None
        if offset >= subnet.num_addresses - 1:
            c.add(join(fld, "address"), f"{short(host)} would be offset {offset} of underlay.subnet {subnet}, "
                                        "outside it")
            return None
        return str(subnet.network_address + offset)

    def parse_own(self, c: Collector, field: str, value: object, source: str) -> object:
        """vagrant.dir: where the Vagrantfile is, relative to the inventory file (default: its parent directory,
        as for inventories/vagrant.yaml and the Vagrantfile at the top of the repository)."""
        raw = c.mapping(value, "vagrant", ("dir",))
        rel = raw.get("dir", "..")
        if not isinstance(rel, str) or not rel:
            c.wrong_type("vagrant.dir", "must be a directory path (relative to this file), e.g. '..'")
            return None
        return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(source)), os.path.expanduser(rel)))
