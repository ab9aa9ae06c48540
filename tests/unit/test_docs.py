"""The docs stay true: every relative link in README.md and docs/ resolves, every `labctl ...` and `fab ...`
command line they show parses with the real parsers (labctl's argparse, and Invoke's parser over the generated fab
tasks), and the README stays a front door."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from fabric.main import program
from invoke.parser import Parser, ParserContext

from labctl import cli
from labctl.fabtasks import collection

ROOT = Path(__file__).parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
SHELLS = ("sh", "bash", "shell", "console")


def rel(page: Path) -> str:
    return str(page.relative_to(ROOT))


def links() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        text = FENCE.sub("", page.read_text())
        found += [(rel(page), target) for target in LINK.findall(text)
                  if not re.match(r"[a-z]+:", target) and not target.startswith("#")]
    return found


@pytest.mark.parametrize("page, target", links())
def test_relative_links_resolve(page: str, target: str) -> None:
    path = (ROOT / page).parent / target.split("#", 1)[0]
    assert path.exists(), f"{page}: link to {target}, which does not exist"


def command_lines() -> list[tuple[str, str]]:
    """(page, command) for each labctl/fab command in shell blocks and in inline code."""
    found = []
    for page in PAGES:
        text = page.read_text()
        candidates = []
        for lang, body in FENCE.findall(text):
            if lang in SHELLS:
                candidates += body.splitlines()
        candidates += INLINE.findall(FENCE.sub("", text))
        for line in candidates:
            line = re.sub(r"\s#\s.*$", "", line).strip()        # a trailing comment
            for part in re.split(r"\s*(?:&&|\|\||;|\|)\s*", line):
                words = part.split()
                while words and re.match(r"^[A-Z_]+=\S*$", words[0]):   # VAR=value before the command
                    words.pop(0)
                if words and words[0].rsplit("/", 1)[-1] in ("labctl", "fab"):
                    found.append((rel(page), " ".join(words)))
    return found


def fab_parser() -> Parser:
    return Parser(initial=ParserContext(args=program.core_args()), contexts=collection().to_contexts())


def parses(command: str) -> str | None:
    """None when the command line parses; else what the parser said."""
    words = shlex.split(command)
    name = words[0].rsplit("/", 1)[-1]
    if tuple(words[1:]) in NAMES[name]:
        return None          # the name of a command (`labctl grade`), not a command line
    if name == "labctl":
        try:
            cli.parse_args(words[1:])
        except SystemExit as exc:       # --help exits 0 after printing: it parsed
            return None if exc.code == 0 else f"argparse exit {exc.code}"
        return None
    if words[1:2] in (["--help"], ["-h"]) and len(words) == 3:
        return None if words[2] in NAMES["fab"] or (words[2],) in NAMES["fab"] else f"no task {words[2]}"
    try:
        fab_parser().parse_argv(words[1:])
    except Exception as exc:  # invoke's ParseError, and anything else it raises on a bad line
        return f"{type(exc).__name__}: {exc}"
    return None


NAMES = {"labctl": {(), *(w for w, _, _ in cli.walk(cli.build_parser()))},
         "fab": {(), *((t,) for t in collection().task_names)}}
COMMANDS = command_lines()


def test_the_docs_show_commands() -> None:
    assert len(COMMANDS) > 60 and any(c.startswith("fab ") for _, c in COMMANDS)


@pytest.mark.parametrize("page, command", COMMANDS)
def test_every_command_line_shown_parses(page: str, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    error = parses(command)
    assert error is None, f"{page}: `{command}` does not parse: {error}\n{capsys.readouterr().err[-500:]}"


def test_a_command_that_does_not_exist_would_be_caught() -> None:
    assert parses("labctl verfiy") is not None and parses("fab verify --nosuch") is not None
    assert parses("labctl grade -e x.yaml [--details]") is not None and parses("fab verfiy") is not None
    assert parses("labctl verify --junit x.xml") is None and parses("fab trace --src c1 --dst c3") is None


def test_the_readme_is_a_front_door() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    assert "![" in text and "docs/seed-lab.svg" in text and (ROOT / "docs" / "seed-lab.svg").exists()
    svg = (ROOT / "docs" / "seed-lab.svg").read_text()
    for name in ("c1", "c2", "c3", "c4", "node1", "node2", "store", "ov", "mv"):
        assert f">{name}" in svg, f"the picture shows {name}"
