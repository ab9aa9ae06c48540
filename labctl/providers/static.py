"""Static provider: machines that already exist, reached with the SSH settings the inventory gives, filled in from
the user's ssh_config for a host given as an alias (`ssh: {config_host: ALIAS}`).

Precedence, per field: the inventory (its `ssh:` or the host's own), then the alias's entry in the ssh_config
file, then labctl's default. Each endpoint says where each value came from (`labctl hosts`)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import paramiko

from labctl.errors import Problem, ValidationError
from labctl.model.hosts import Host
from labctl.model.inventory import Inventory
from labctl.providers.base import Endpoint, Provider

DEFAULT_SSH_CONFIG = "~/.ssh/config"
DEFAULTS = {"user": "root", "port": 22}


@dataclass(frozen=True)
class Resolved:
    """One value and where it came from."""

    value: object
    origin: str


def read_ssh_config(path: str, inv: Inventory, fld: str) -> paramiko.SSHConfig:
    full = os.path.expanduser(path)
    try:
        return paramiko.SSHConfig.from_path(full)
    except OSError as exc:
        raise ValidationError([Problem(inv.source, fld, f"cannot read ssh_config {full}: {exc.strerror}; "
                                                        "give an existing file in `ssh.config`, or leave it out for "
                                                        f"{DEFAULT_SSH_CONFIG}")]) from None


class Resolver:
    """Endpoints of an inventory's hosts, with ssh_config files read once each."""

    def __init__(self, inv: Inventory) -> None:
        self.inv = inv
        self.configs: dict[str, paramiko.SSHConfig] = {}

    def config(self, host: Host) -> tuple[str, dict[str, object]]:
        """(origin label, the alias's options) for a host given as an ssh_config alias; ("", {}) otherwise."""
        alias = host.ssh.config_host
        if not alias:
            return "", {}
        path = host.ssh.config or DEFAULT_SSH_CONFIG
        if path not in self.configs:
            self.configs[path] = read_ssh_config(path, self.inv, f"hosts.{host.name}.ssh.config")
        found = self.configs[path].lookup(alias)
        return f"ssh_config {path} (Host {alias})", dict(found)

    def value(self, host: Host, fld: str, option: str, config: tuple[str, dict[str, object]],
              default: object = None) -> Resolved:
        origin = host.ssh.origin(fld)
        if origin is not None:
            return Resolved(getattr(host.ssh, fld), f"inventory {origin}")
        label, options = config
        if option in options:
            got = options[option]
            first = got[0] if isinstance(got, list) else got
            if option == "userknownhostsfile":
                first = str(first).split()[0]       # ssh_config may list several; the first is written to
            return Resolved(first, label)
        return Resolved(default, "default")

    def endpoint(self, host: Host, with_jump: bool = True) -> Endpoint:
        config = self.config(host)
        label, options = config
        if host.address is not None:
            address = Resolved(host.address, f"inventory hosts.{host.name}.address")
        elif "hostname" in options:
            address = Resolved(options["hostname"], label)
        else:
            address = Resolved(host.ssh.config_host or host.name, "default")
        got = {
            "user": self.value(host, "user", "user", config, DEFAULTS["user"]),
            "port": self.value(host, "port", "port", config, DEFAULTS["port"]),
            "key_file": self.value(host, "key", "identityfile", config),
            "known_hosts": self.value(host, "known_hosts", "userknownhostsfile", config),
            "jump": self.value(host, "jump", "proxyjump", config),
        }
        if str(got["jump"].value or "").lower() == "none":
            got["jump"] = Resolved(None, got["jump"].origin)
        origins = {"address": address.origin, **{k: r.origin for k, r in got.items() if r.value is not None
                                                  or r.origin != "default"}}
        if host.ssh.origin("become"):
            origins["become"] = f"inventory {host.ssh.origin('become')}"
        if host.ssh.origin("host_keys"):
            origins["host_keys"] = f"inventory {host.ssh.origin('host_keys')}"
        jump = self.jump(host, str(got["jump"].value)) if with_jump and got["jump"].value else None
        return Endpoint(name=host.name, address=str(address.value), port=int(str(got["port"].value)),
                        user=str(got["user"].value), key_file=_str(got["key_file"].value),
                        known_hosts=_str(got["known_hosts"].value), roles=host.roles,
                        host_keys=host.ssh.host_keys, become=host.ssh.become, jump=jump,
                        origins=tuple(sorted(origins.items())))

    def jump(self, host: Host, spec: str) -> Endpoint | None:
        """The bastion named by `jump:`/ProxyJump: an inventory host (reached directly, as the inventory says), or
        [user@]host[:port] outside the lab, logged in to with this host's key, user and known_hosts."""
        first = spec.split(",")[0]          # ProxyJump may list several; labctl follows one bastion
        if first in (host.name, host.ssh.config_host):
            return None
        for other in self.inv.hosts:        # an inventory host, by its name or by its ssh_config alias
            if first in (other.name, other.ssh.config_host):
                return self.endpoint(other, with_jump=False)
        user, _, rest = first.rpartition("@")
        name, _, port = rest.partition(":")
        me = self.endpoint(host, with_jump=False)
        label, options = self.config(host)
        known = dict(self.configs[host.ssh.config or DEFAULT_SSH_CONFIG].lookup(name)) if label else {}
        files = known.get("identityfile") or [me.key_file]
        return Endpoint(name=f"{host.name}'s bastion {rest}", address=str(known.get("hostname", name)),
                        port=int(port or str(known.get("port", 22))), user=user or str(known.get("user", me.user)),
                        key_file=_str(files[0] if isinstance(files, list) else files),
                        known_hosts=_str(str(known["userknownhostsfile"]).split()[0] if "userknownhostsfile" in known
                                         else me.known_hosts), roles=(),
                        host_keys=host.ssh.host_keys)


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def endpoints(inv: Inventory) -> list[Endpoint]:
    resolver = Resolver(inv)
    return [resolver.endpoint(h) for h in inv.hosts]


class StaticProvider(Provider):
    name = "static"

    def endpoints(self, inv: Inventory) -> list[Endpoint]:
        return endpoints(inv)


PROVIDER = StaticProvider()
