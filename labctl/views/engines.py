"""`labctl engines`: the engines a host can run and what each can do."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from labctl.views.console import heading, make, table


def print_engines(rows: list[dict[str, Any]], cache: str, console: Console | None = None) -> None:
    console = console or make()
    heading(console, f"engines (cache: {cache})")
    t = table()
    for col in ("name", "kind", "version", "cluster store", "swarm", "cached"):
        t.add_column(col, no_wrap=col in ("name", "version", "kind"))
    for r in rows:
        known = r["cached"] is not False
        engine = r["kind"] == "engine"
        version = r["version"].replace("Docker version ", "").split(",")[0] if r["version"] else \
            ("(not fetched)" if not known else "-")
        backends = (" ".join(r["backends"]) or "none") if known else "?"
        swarm = ("yes" if r["swarm"] else "no") if known else "?"
        cached = "own" if r["cached"] is None else ("yes" if r["cached"] else "no")
        t.add_row(r["name"], "engine" if engine else "store", version, backends if engine else "-",
                  swarm if engine else "-", cached)
    console.print(t)
    for r in rows:
        for helper, why in r["from_host"].items():
            console.print(f"{r['name']}: {helper} from {why}", soft_wrap=True)
