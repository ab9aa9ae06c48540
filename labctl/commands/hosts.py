"""`labctl hosts`, `labctl ssh` and `labctl image load`: the hosts as labctl reaches them."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence

from labctl.commands.common import load
from labctl.errors import Problem, ValidationError
from labctl.executors import dockerhost
from labctl.executors.images import archive_from_path
from labctl.executors.remote import Hosts
from labctl.model.inventory import Inventory
from labctl.providers import registry
from labctl.providers.base import Endpoint
from labctl.ui import Progress
from labctl.views.lab import print_hosts


def cmd_hosts(args: argparse.Namespace, progress: Progress) -> int:
    inv = load(args)
    if args.json:
        print(json.dumps({"lab": inv.name, "provider": inv.provider,
                          "hosts": [{**ep.as_dict(), "engine": inv.host(ep.name).engine}
                                    for ep in registry.endpoints(inv)]}, indent=2))
    else:
        print_hosts(inv)
    return 0


def _identity(ep: Endpoint) -> list[str]:
    argv = ["-p", str(ep.port), "-o", "StrictHostKeyChecking=yes" if ep.strict_host_keys and
            ep.host_keys == "strict" else "StrictHostKeyChecking=accept-new"]
    if ep.key_file:
        argv += ["-i", os.path.expanduser(ep.key_file), "-o", "IdentitiesOnly=yes"]
    if ep.known_hosts:
        argv += ["-o", f"UserKnownHostsFile={os.path.expanduser(ep.known_hosts)}"]
    return argv


def ssh_argv(inv: Inventory, host: str, remote_command: Sequence[str]) -> list[str]:
    eps = {ep.name: ep for ep in registry.endpoints(inv)}
    if host not in eps:
        raise ValidationError([Problem(inv.source, "hosts", f"no host {host!r}; hosts: {', '.join(eps)}")])
    ep = eps[host]
    argv = ["ssh", *_identity(ep)]
    if ep.jump is not None:
        # ProxyCommand, not -J: the bastion's own key and known_hosts (-J would give it the target's options)
        hop = ["ssh", *_identity(ep.jump), "-W", "%h:%p", "--", f"{ep.jump.user}@{ep.jump.address}"]
        argv += ["-o", "ProxyCommand=" + shlex.join(hop)]
    argv += ["--", f"{ep.user}@{ep.address}"]
    if remote_command:
        argv.append(" ".join(remote_command))  # as ssh itself does: the remote shell parses the words
    return argv


def cmd_ssh(args: argparse.Namespace, progress: Progress) -> int:
    inv = load(args)
    argv = ssh_argv(inv, args.host, args.remote_command)
    sys.stdout.flush()
    os.execvp(argv[0], argv)
    return 0  # not reached


def cmd_image_load(args: argparse.Namespace, progress: Progress) -> int:
    inv = load(args)
    image = archive_from_path(args.source, args.tag)
    names = [h.name for h in inv.docker_hosts]
    with Hosts(registry.endpoints(inv)) as hosts:
        loaded = dockerhost.load_images(hosts, names, image, progress)
    count = sum(loaded.values())
    print(f"image {image.tag or args.source}: loaded on {count} host(s), already present on {len(names) - count}")
    return 0
