"""The one way views make a console, a heading and a table; and the folding of wide matrices."""

from __future__ import annotations

import os
import sys
from typing import IO

from rich.console import Console
from rich.table import Table
from rich.text import Text

PIPE_WIDTH = 200      # not a terminal and no $COLUMNS: wide enough for a log, narrow enough to read


def plain_requested(env: dict[str, str] | None = None) -> bool:
    """NO_COLOR (https://no-color.org): set and not empty."""
    return bool((os.environ if env is None else env).get("NO_COLOR"))


def make(stream: IO[str] | None = None, stderr: bool = False) -> Console:
    """A console that prints text as given: no markup, no emoji codes, no highlighting; no colour for NO_COLOR."""
    file = stream or (sys.stderr if stderr else sys.stdout)
    tty = hasattr(file, "isatty") and file.isatty()
    width = None if tty or os.environ.get("COLUMNS") else PIPE_WIDTH
    return Console(file=file, highlight=False, emoji=False, markup=False, width=width,
                   color_system=None if plain_requested() else "auto")


def heading(console: Console, text: str) -> None:
    console.print(Text(text, style="bold"), soft_wrap=True)


def line(console: Console, *parts: str | tuple[str, str]) -> None:
    """One line that may be longer than the terminal (it wraps as the terminal wraps it); (text, style) parts."""
    console.print(Text.assemble(*parts), soft_wrap=True)


def table(*columns: str) -> Table:
    t = Table(show_header=True, header_style="bold")
    for col in columns:
        t.add_column(col)
    return t


def fold(names: list[str], first_width: int, cell_width: int, width: int) -> list[list[str]]:
    """Columns of a matrix in groups that fit `width`: each group is printed as its own table, under the same row
    names, instead of squeezing every column until words break in the middle (`MISMA/TCH`)."""
    per_cell = cell_width + 3                      # padding and the border
    room = max(1, (width - first_width - 4) // per_cell)
    return [names[i:i + room] for i in range(0, len(names), room)] or [[]]
