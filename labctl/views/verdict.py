"""`labctl verify`: one matrix per network and kind of check, the mismatches with their causes, the verdict."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from labctl.executors import verify
from labctl.views import verify_report as verdict
from labctl.views.console import fold, heading, line, make, table

STYLE = {"reach": "green", "isolated": "blue", "MISMATCH": "bold red"}


def _matrix(console: Console, title: str, srcs: list[str], dsts: list[str], cells: dict[tuple[str, str], str]
            ) -> None:
    first = max([len("from \\ to"), *map(len, srcs)])
    cell = max([len("isolated"), *map(len, dsts), *map(len, cells.values())])
    groups = fold(dsts, first, cell, console.width)
    for i, group in enumerate(groups, 1):
        part = f" (columns {i} of {len(groups)})" if len(groups) > 1 else ""
        heading(console, f"{title}{part}")
        t = table("from \\ to", *group)
        for s in srcs:
            row: list[str | Text] = [s]
            for d in group:
                mark = cells.get((s, d), "")
                row.append(Text(mark, style=STYLE[mark.split()[0]]) if mark else "")
            t.add_row(*row)
        console.print(t)


def print_verdict(result: verify.Verdict, quiet: bool = False, console: Console | None = None) -> None:
    """Matrices (not with --quiet), every mismatch with why it was expected and its likely cause, the verdict."""
    console = console or make()
    for title, (srcs, dsts, cells) in verdict.matrices(result.results).items() if not quiet else ():
        name = f"{title}: does the row reach the column?"
        if len(dsts) > verdict.FOLD_OVER:
            srcs, dsts, cells = verdict.host_matrix(result.results, title)
            name = f"{title}: per host pair (source host -> destination host), checks by outcome"
        _matrix(console, name, srcs, dsts, cells)
    for r in (r for r in result.results if not r.ok):
        c = r.check
        line(console, ("MISMATCH", "bold red"),
             f" {c.src} ({c.src_host}) -> {c.dst} ({c.dst_host or '-'}) on {c.network} via {c.via} "
             f"{c.address or '(no address)'}: expected {c.expect}, observed {r.observed}\n"
             f"    expected because: {c.reason}" + (f"\n    likely cause: {r.cause}" if r.cause else ""))
    summary = verdict.verdict(result.results)
    kinds = sorted({r.check.expect for r in result.results})
    state = ("OK", "bold green") if result.ok else ("FAILED", "bold red")
    line(console, f"verify {result.lab}: ", state,
         f": {summary['passed']}/{summary['total']} checks as expected ({', '.join(kinds) or 'none'}), "
         f"{summary['failed']} mismatched, {result.duration_s:.1f}s" + (" (sampled)" if result.sampled else ""))
    if not quiet:
        line(console, f"probes: {verify.describe_modes(result.probe_modes, result.probe_notes)}"
             + (f"; {result.reprobed} check(s) probed again" if result.reprobed else ""))
