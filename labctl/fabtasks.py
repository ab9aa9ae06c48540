"""The `fab` tasks, generated from labctl's own argument parsers so that the two cannot drift.

Every `labctl` command becomes a task of the same name (`labctl sandbox up` is `fab sandbox-up`), with the same
options, the same short flags and the same help. A task turns its arguments back into a `labctl` command line and
runs it in-process, so defaults, validation and exit codes are labctl's.

Differences, forced by Invoke's parser: a positional argument is a flag (`labctl trace c1 c3` is
`fab trace --src c1 --dst c3`, `labctl break SCENARIO` is `fab break --scenario SCENARIO`), because Invoke would take
`fab trace --help` as the value of the first positional; `--provision`/`--no-provision` is `--provision` or
`--provision=no`; `labctl ssh` has no task (use `labctl ssh`, which replaces itself with ssh).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from invoke import Argument, Collection, Exit, Task

from labctl import cli

NO_TASK = {("help",), ("ssh",)}
FALSE_WORDS = ("no", "false", "0", "off")


@dataclass(frozen=True)
class Option:
    """One argparse argument as a task argument."""

    dest: str              # the Python name (the task's keyword argument)
    flag: str              # the long option without dashes ("inventory"); for a positional, its name
    short: str | None      # "i" for -i
    kind: str              # "value", "flag" (store_true), "tristate" (BooleanOptionalAction), "positional", or
                           # "optional-positional" (nargs="?": a flag for fab, a positional for labctl)
    help: str

    @property
    def option(self) -> str:
        return f"--{self.flag}"


def _help_text(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    text = parser._get_formatter()._expand_help(action) if action.help else ""
    if action.choices is not None and not isinstance(action.choices, range):
        text += f" (one of: {', '.join(map(str, action.choices))})"
    return text


def _option(parser: argparse.ArgumentParser, action: argparse.Action) -> Option | None:
    if isinstance(action, argparse._HelpAction | argparse._SubParsersAction) or action.dest == "quiet":
        return None
    longs = [s for s in action.option_strings if s.startswith("--")]
    shorts = [s[1:] for s in action.option_strings if len(s) == 2 and s != "-h"]
    help_text = _help_text(parser, action)
    if not action.option_strings:
        if action.nargs in ("*", "+"):
            raise ValueError(f"{action.dest}: a list positional has no fab form")
        kind, flag = ("optional-positional" if action.nargs == "?" else "positional"), action.dest
    elif isinstance(action, argparse.BooleanOptionalAction):
        kind, flag = "tristate", longs[0][2:]
        help_text += f" (--{flag} or --{flag}=no)"
    else:
        kind = "flag" if isinstance(action, argparse._StoreTrueAction) else "value"
        flag = longs[0][2:]
    return Option(action.dest, flag, shorts[0] if shorts else None, kind, help_text)


def options_of(parser: argparse.ArgumentParser) -> list[Option]:
    return [o for o in (_option(parser, a) for a in parser._actions) if o is not None]


def argv_for(words: tuple[str, ...], options: list[Option], values: dict[str, Any]) -> list[str]:
    """The labctl command line a task's arguments stand for."""
    argv = ["--quiet"] if values.get("quiet") else []
    argv += list(words)
    tail = []
    for o in options:
        v = values.get(o.dest)
        if o.dest == "quiet":
            continue
        if o.kind in ("positional", "optional-positional"):
            tail += [str(v)] if v not in (None, "") else []
        elif o.kind == "flag":
            argv += [o.option] if v else []
        elif o.kind == "tristate" and v is not None:
            off = v is False or (isinstance(v, str) and v.lower() in FALSE_WORDS)
            argv.append(f"--no-{o.flag}" if off else o.option)
        elif o.kind == "value" and v not in (None, ""):
            argv += [o.option, str(v)]
    return argv + tail


class LabctlTask(Task):
    """A Task whose arguments are exactly labctl's options: the long names and short flags argparse has, none made
    up (Invoke would give `--html` the `-h` of help), positionals first."""

    def __init__(self, body: Callable[..., None], options: list[Option], **kwargs: Any) -> None:
        self.options = options
        super().__init__(body, auto_shortflags=False, positional=[], **kwargs)

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        args = []
        for o in self.options:
            help_text = f"{o.help} (required)" if o.kind == "positional" else o.help
            kwargs: dict[str, Any] = {"names": [o.flag] + ([o.short] if o.short else []), "help": help_text,
                                      "optional": o.kind == "tristate"}
            if o.kind == "flag":
                kwargs.update(kind=bool, default=False)
            args.append(Argument(**kwargs))
        return args


def _task(words: tuple[str, ...], parser: argparse.ArgumentParser, summary: str) -> LabctlTask:
    options = [Option("quiet", "quiet", "q", "flag", "no progress lines, only the outcome")] + options_of(parser)

    def body(c: Any, **values: Any) -> None:
        """(replaced by the command's description)"""
        missing = [f"--{o.flag}" for o in options if o.kind == "positional" and not values.get(o.flag)]
        if missing:
            raise Exit(f"fab {'-'.join(words)}: give {' and '.join(missing)} (`fab --help {'-'.join(words)}`)",
                       code=2)
        code = cli.main(argv_for(words, options, {o.dest: values.get(o.flag) for o in options}))
        if code:
            raise Exit(code=code)

    description = parser.description or summary
    body.__doc__ = summary if description == summary else f"{summary}\n\n{description}"
    body.__name__ = "_".join(words).replace("-", "_")
    return LabctlTask(body, options, name="-".join(words))


def has_required_actions(parser: argparse.ArgumentParser) -> bool:
    return any(isinstance(a, argparse._SubParsersAction) and a.required for a in parser._actions)


def collection() -> Collection:
    ns = Collection()
    for words, parser, summary in cli.walk(cli.build_parser()):
        if words in NO_TASK or has_required_actions(parser):
            continue
        ns.add_task(_task(words, parser, summary))
    return ns
