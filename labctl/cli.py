"""labctl command line. Thin: parse arguments, find the inventory and playbook, call the command's handler
(labctl.commands), map errors to exit codes.

Exit codes: 0 success, 1 a host or step failed, 2 bad input or missing prerequisite (nothing changed), 130 interrupted.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Sequence

from labctl import defaults
from labctl.commands.classroom import cmd_break, cmd_grade, cmd_list_scenarios
from labctl.commands.engines import cmd_engines, cmd_engines_fetch
from labctl.commands.hosts import cmd_hosts, cmd_image_load, cmd_ssh, ssh_argv
from labctl.commands.inspect import cmd_graph, cmd_status, cmd_trace
from labctl.commands.lab import cmd_down, cmd_provision, cmd_up
from labctl.commands.parser import GROUPS, build_parser, walk
from labctl.commands.sandbox import cmd_sandbox_down, cmd_sandbox_list, cmd_sandbox_up
from labctl.commands.validate import cmd_validate
from labctl.commands.verify import cmd_verify
from labctl.errors import LabctlError, UsageError
from labctl.executors.remote import BECOME_PASSWORD, ROUND_TRIPS
from labctl.ui import Progress

__all__ = ["GROUPS", "build_parser", "main", "parse_args", "ssh_argv", "walk"]

HANDLERS = {
    ("up", None): cmd_up,
    ("down", None): cmd_down,
    ("provision", None): cmd_provision,
    ("sandbox", "up"): cmd_sandbox_up,
    ("sandbox", "down"): cmd_sandbox_down,
    ("sandbox", "list"): cmd_sandbox_list,
    ("destroy", None): cmd_sandbox_down,
    ("validate", None): cmd_validate,
    ("status", None): cmd_status,
    ("graph", None): cmd_graph,
    ("trace", None): cmd_trace,
    ("verify", None): cmd_verify,
    ("grade", None): cmd_grade,
    ("break", None): cmd_break,
    ("list-scenarios", None): cmd_list_scenarios,
    ("hosts", None): cmd_hosts,
    ("ssh", None): cmd_ssh,
    ("image", "load"): cmd_image_load,
    ("engines", None): cmd_engines,
    ("engines", "fetch"): cmd_engines_fetch,
}


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """argparse cannot mix options with a trailing command, so `labctl ssh ... -- CMD` is split here."""
    argv = list(argv)
    remote: list[str] = []
    if "ssh" in argv and "--" in argv[argv.index("ssh"):]:
        cut = argv.index("--", argv.index("ssh"))
        argv, remote = argv[:cut], argv[cut + 1:]
    args = build_parser().parse_args(argv)
    if remote:
        args.remote_command = list(args.remote_command) + remote
    return args


def show_help(args: argparse.Namespace) -> int:
    """`labctl` alone (exit 2: no command given) and `labctl help [COMMAND [ACTION]]` (exit 0)."""
    parser = build_parser()
    if args.command is None:
        sys.stdout.write(parser.format_help())
        return 2
    commands = {words: p for words, p, _ in walk(parser)}
    topic = tuple(args.topic)
    if topic and topic not in commands:
        raise UsageError(f"no command {' '.join(topic)!r}", hint="`labctl help` lists them")
    sys.stdout.write((commands[topic] if topic else parser).format_help())
    return 0


def resolve_files(args: argparse.Namespace) -> str | None:
    """Fill in the inventory and playbook the command line left out (`defaults`); the line that says which."""
    used = []
    if getattr(args, "roster", None) and args.command in ("up", "down", "break") and args.inventory:
        raise UsageError("--class and --inventory exclude each other: the class file names each student's inventory")
    if hasattr(args, "inventory") and not (getattr(args, "roster", None)
                                           and args.command in ("grade", "sandbox", "up", "down", "break")):
        choice = defaults.resolve("inventory", args.inventory)
        args.inventory = choice.path
        used.append(choice.describe("inventory"))
    if hasattr(args, "playbook"):
        if getattr(args, "all_labs", False):
            if args.playbook:
                raise UsageError("--all-labs and --playbook exclude each other: choose one")
            used.append("no playbook (--all-labs)")
        else:
            choice = defaults.resolve("playbook", args.playbook)
            args.playbook = choice.path
            used.append(choice.describe("playbook"))
    return ", ".join(used) or None


BECOME_ENV = "LABCTL_BECOME_PASS"


def take_become_password(args: argparse.Namespace) -> None:
    """The sudo password from the environment or the terminal, kept in memory only: removed from this process's
    environment so that no command labctl starts inherits it."""
    password = os.environ.pop(BECOME_ENV, None)
    if getattr(args, "ask_become_pass", False):
        if not sys.stdin.isatty():
            raise UsageError("--ask-become-pass needs a terminal to ask on",
                             hint=f"give the password in the environment instead: {BECOME_ENV}=...")
        password = getpass.getpass("sudo password (BECOME): ")
    BECOME_PASSWORD.set(password)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:       # building the parsers takes a moment on a loaded machine
        print("interrupted", file=sys.stderr)
        return 130
    progress = Progress(quiet=args.quiet)
    try:
        take_become_password(args)
        if args.command in (None, "help"):
            return show_help(args)
        sub = (getattr(args, "sandbox_command", None) or getattr(args, "image_command", None)
               or getattr(args, "engines_command", None))
        handler = HANDLERS[(args.command, sub)]
        used = resolve_files(args)
        if used:
            progress.note(f"labctl {args.command}{' ' + sub if sub else ''}: {used}")
        try:
            return handler(args, progress)
        finally:
            if os.environ.get("LABCTL_ROUND_TRIPS"):
                print(f"round trips per host: {ROUND_TRIPS.describe()}", file=sys.stderr)
    except LabctlError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error of labctl's
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
