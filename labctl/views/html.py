"""The verify verdict as one self-contained HTML page (`labctl verify --html FILE`): the matrices coloured, every
mismatch with why it was expected and its likely cause, and the topology picture inline. No script, no style
sheet, font or image fetched from anywhere: the file opens the same offline, from a CI artifact or a mail."""

from __future__ import annotations

import re
from html import escape
from typing import Any

from labctl.plan.verify import Result, verdict
from labctl.views.verify_report import FOLD_OVER, host_matrix, matrices

STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
.ok { color: #186a1f; } .failed { color: #b00020; }
table.matrix { border-collapse: collapse; margin: 0.5em 0 1em 0; }
table.matrix th, table.matrix td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: center; }
table.matrix th { background: #f0f0f0; }
td.reach { background: #d4f4d2; color: #124d16; }
td.isolated { background: #d6e6fb; color: #0f3b78; }
td.mismatch { background: #d3001f; color: #fff; font-weight: bold; }
td.none { background: #fafafa; }
ul.mismatches li { margin-bottom: 0.7em; }
.why { color: #444; } .cause { color: #b00020; }
.topology svg { max-width: 100%; height: auto; border: 1px solid #ddd; }
.meta { color: #555; font-size: 0.9em; }
"""

CELL_CLASS = {"reach": "reach", "isolated": "isolated", "MISMATCH": "mismatch"}


def inline_svg(svg: str) -> str:
    """An SVG document as markup that can sit inside HTML (no XML declaration, no DOCTYPE, no comments)."""
    svg = re.sub(r"<\?xml[^>]*\?>", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>", "", svg, flags=re.DOTALL)
    return re.sub(r"<!--.*?-->", "", svg, flags=re.DOTALL).strip()


def _matrix(title: str, results: list[Result], srcs: list[str], dsts: list[str],
            cells: dict[tuple[str, str], str]) -> str:
    if len(dsts) > FOLD_OVER:
        srcs, dsts, cells = host_matrix(results, title)
        title = f"{title}: per host pair"
    head = "".join(f"<th>{escape(d)}</th>" for d in dsts)
    rows = []
    for s in srcs:
        tds = []
        for d in dsts:
            mark = cells.get((s, d), "")
            cls = CELL_CLASS.get(mark.split()[0], "none") if mark else "none"
            tds.append(f'<td class="{cls}">{escape(mark)}</td>')
        rows.append(f"<tr><th>{escape(s)}</th>{''.join(tds)}</tr>")
    return (f'<h2>{escape(title)}</h2>\n<table class="matrix"><tr><th>from \\ to</th>{head}</tr>\n'
            + "\n".join(rows) + "</table>")


def _mismatch(r: Result) -> str:
    c = r.check
    return (f"<li><b>{escape(c.src)}</b> ({escape(c.src_host)}) &rarr; <b>{escape(c.dst)}</b> "
            f"({escape(c.dst_host or '-')}) on {escape(c.network)} via {escape(c.via)} "
            f"{escape(c.address or '(no address)')}: expected <b>{escape(c.expect)}</b>, observed "
            f"<b>{escape(r.observed)}</b><br><span class=\"why\">expected because: {escape(c.reason)}</span><br>"
            f"<span class=\"cause\">likely cause: {escape(r.cause or 'unknown')}</span></li>")


def to_html(lab: str, results: list[Result], duration_s: float, probe: dict[str, Any] | None = None,
            svg: str | None = None, picture_note: str = "") -> str:
    summary = verdict(results)
    ok = summary["failed"] == 0
    state = ('<span class="ok">OK</span>' if ok else '<span class="failed">FAILED</span>')
    modes = ", ".join(f"{escape(h)}: {escape(m)}" for h, m in sorted((probe or {}).get("modes", {}).items()))
    parts = [f"<h1>verify {escape(lab)}: {state}</h1>",
             f'<p class="summary">{summary["passed"]}/{summary["total"]} checks as expected, '
             f'{summary["failed"]} mismatched, {duration_s:.1f}s</p>',
             f'<p class="meta">probes: {modes or "-"}</p>']
    for title, (srcs, dsts, cells) in matrices(results).items():
        parts.append(_matrix(title, results, srcs, dsts, cells))
    failed = [r for r in results if not r.ok]
    if failed:
        parts.append(f"<h2>Mismatches ({len(failed)})</h2>\n<ul class=\"mismatches\">"
                     + "\n".join(_mismatch(r) for r in failed) + "</ul>")
    parts.append("<h2>Topology</h2>")
    parts.append(f'<div class="topology">{inline_svg(svg)}</div>' if svg else
                 f"<p>{escape(picture_note or 'no picture')}</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>verify {escape(lab)}: {'OK' if ok else 'FAILED'}</title><style>{STYLE}</style></head>\n<body>\n"
            + "\n".join(parts) + "\n</body></html>\n")
