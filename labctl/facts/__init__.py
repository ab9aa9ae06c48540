"""Facts: what labctl learns from a host, each one a shell command plus the parser of its output (pure).

A `Fact[T]` names a command and a parser that returns T (a dataclass, a tuple, a str). `script(facts)` puts any
set of facts into one shell script, so that one SSH round trip per host answers all of them; `answers(...)` splits
that script's output by each fact's own marker line and parses every part, and `Answers[fact]` gives the typed
value. A fact whose part is missing (the host went away mid-script) is parsed from "", so every parser says what
"nothing" means for it. The executor that runs the script is `labctl.executors.facts`.

Which facts exist: `labctl.facts.docker` (the engine's own objects, and where engines 20.10 and 26 differ),
`labctl.facts.host` (the machine: hostname, interfaces, daemon.json, underlay), and each control plane's own
(`PlanePlan.fact`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
NAME = re.compile(r"^[a-z][a-z0-9.-]{0,62}$")
MARK = "--labctl-fact:"
END = "--labctl-facts-end--"


@dataclass(frozen=True, eq=False)
class Fact(Generic[T]):
    """name: unique in a batch ([a-z][a-z0-9.-]*); command: shell (its stderr is the host's to keep: send it to
    /dev/null where it is noise); parse: (host, output) -> value."""

    name: str
    command: str
    parse: Callable[[str, str], T]

    def __post_init__(self) -> None:
        if not NAME.match(self.name):
            raise ValueError(f"fact name {self.name!r} does not match {NAME.pattern}")

    @property
    def marker(self) -> str:
        return f"{MARK}{self.name}--"


def fact(name: str, command: str, parse: Callable[[str], T]) -> Fact[T]:
    """A fact whose parser does not need the host's name."""
    return Fact(name, command, lambda _host, text: parse(text))


def script(facts: Sequence[Fact[Any]], end: bool = True) -> str:
    """One shell script answering every fact: each command in its own group after its marker line, so that a
    command's `;`, `&&` or failure does not touch the next one. The script ends with a marker of its own, whose
    absence tells a cut-off answer from an empty one. end=False: a script that is itself one fact's command (a
    plane's facts, made of smaller ones), whose parts the outer batch must not take for its end."""
    names = [f.name for f in facts]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"facts asked twice in one batch: {', '.join(twice)}")
    parts = [f"echo '{f.marker}'; {{ {f.command}\n}}" for f in facts]
    return "\n".join([*parts, f"echo '{END}'"] if end else parts)


@dataclass(frozen=True)
class Answers:
    """One host's answers to a batch: `answers[FACT]` is the parsed value; `complete` is False when the output
    stopped before the end marker."""

    host: str
    values: dict[str, Any]
    texts: dict[str, str]
    complete: bool = True

    def __getitem__(self, f: Fact[T]) -> T:
        if f.name not in self.values:
            raise KeyError(f"fact {f.name!r} was not asked of {self.host}")
        value: T = self.values[f.name]
        return value

    def get(self, f: Fact[T], default: T) -> T:
        value: T = self.values.get(f.name, default)
        return value

    def __contains__(self, f: object) -> bool:
        return isinstance(f, Fact) and f.name in self.values

    def text(self, f: Fact[Any]) -> str:
        """The fact's raw output (for captures and error messages)."""
        return self.texts.get(f.name, "")


def split(output: str, names: Iterable[str]) -> tuple[dict[str, str], bool]:
    """The script's output as fact name -> its part (text after its marker line up to the next marker), and
    whether the end marker came. Lines before the first marker (a login banner, a shell's noise) are dropped."""
    wanted = {f"{MARK}{n}--": n for n in names}
    parts: dict[str, list[str]] = {}
    current: list[str] | None = None
    complete = False
    for line in output.splitlines():
        if line in wanted:
            current = parts.setdefault(wanted[line], [])
        elif line == END:
            complete, current = True, None
        elif current is not None:
            current.append(line)
    return {n: "\n".join(lines) + ("\n" if lines else "") for n, lines in parts.items()}, complete


def answers(host: str, facts: Sequence[Fact[Any]], output: str) -> Answers:
    """Parse one host's output of `script(facts)`."""
    texts, complete = split(output, [f.name for f in facts])
    values = {f.name: f.parse(host, texts.get(f.name, "")) for f in facts}
    return Answers(host=host, values=values, texts=texts, complete=complete)
