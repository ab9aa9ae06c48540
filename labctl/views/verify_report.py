"""The verify verdict as data for machines (JSON with a fixed contract, JUnit XML) and as text for people."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from labctl.plan.verify import Check, Result, verdict

MARK = {("reach", True): "reach", ("isolated", True): "isolated", ("reach", False): "MISMATCH",
        ("isolated", False): "MISMATCH"}


def check_dict(r: Result) -> dict[str, Any]:
    c = r.check
    return {"src": c.src, "src_host": c.src_host, "dst": c.dst, "dst_host": c.dst_host, "network": c.network,
            "address": c.address, "expect": c.expect, "observed": r.observed, "rtt_ms": r.rtt_ms, "ok": r.ok,
            "via": c.via, "reason": c.reason, "cause": r.cause or None, "size": c.size}


def to_json(lab: str, results: list[Result], duration_s: float,
            probe: dict[str, Any] | None = None) -> dict[str, Any]:
    """{"lab", "ok", "checks": [...], "summary": {"total", "passed", "failed"}, "duration_s", "probe"}; each check
    has the contract's fields plus "via" (ip, name, host, address, or size: one whole packet with "size" bytes of
    payload), "reason" (why expected) and "cause" (why it failed); "probe" says how the hosts probed: {"modes":
    {host: "fping"|"container"}, "notes": {host: why not fping}, "reprobed": checks probed again}."""
    summary = verdict(results)
    return {"lab": lab, "ok": summary["failed"] == 0, "checks": [check_dict(r) for r in results],
            "summary": summary, "duration_s": round(duration_s, 3),
            "probe": probe or {"modes": {}, "notes": {}, "reprobed": 0}}


def test_name(r: Result) -> str:
    c = r.check
    return f"{c.src} -> {c.dst} on {c.network} via {c.via} ({c.address}): {c.expect}"


def to_junit(lab: str, results: list[Result], duration_s: float) -> str:
    summary = verdict(results)
    suite = ET.Element("testsuite", name=f"labctl verify {lab}", tests=str(summary["total"]),
                       failures=str(summary["failed"]), errors="0", time=f"{duration_s:.3f}")
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=f"{lab}.{r.check.network}", name=test_name(r),
                             time=f"{(r.rtt_ms or 0) / 1000:.6f}")
        if not r.ok:
            failure = ET.SubElement(case, "failure", message=f"expected {r.check.expect}, observed {r.observed}")
            failure.text = r.cause or ""
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def matrix_title(c: Check) -> str:
    return {"ip": c.network, "host": c.network, "size": f"{c.network} (whole packets)"}.get(
        c.via, f"{c.network} (by name)")


def matrices(results: list[Result]) -> dict[str, tuple[list[str], list[str], dict[tuple[str, str], str]]]:
    """Per network (and per kind of target): sources, destinations and a cell per pair."""
    tables: dict[str, tuple[list[str], list[str], dict[tuple[str, str], str]]] = {}
    for r in results:
        c = r.check
        title = matrix_title(c)
        srcs, dsts, cells = tables.setdefault(title, ([], [], {}))
        if c.src not in srcs:
            srcs.append(c.src)
        if c.dst not in dsts:
            dsts.append(c.dst)
        mark = MARK[(c.expect, r.ok)]
        prev = cells.get((c.src, c.dst))
        cells[(c.src, c.dst)] = "MISMATCH" if "MISMATCH" in (prev, mark) else mark
    for srcs, dsts, _ in tables.values():
        srcs.sort(key=_order)
        dsts.sort(key=_order)
    return tables


FOLD_OVER = 24   # destinations: a bigger matrix is unreadable per container and is shown per host pair instead


def host_matrix(results: list[Result], title: str) -> tuple[list[str], list[str], dict[tuple[str, str], str]]:
    """One network's matrix folded to host pairs: each cell counts its checks by outcome, mismatches first
    ("MISMATCH 3/25", else "reach 25" or "reach 20, isolated 5")."""
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for r in results:
        c = r.check
        if matrix_title(c) != title:
            continue
        per = counts.setdefault((c.src_host, c.dst_host or c.dst), {})
        mark = MARK[(c.expect, r.ok)]
        per[mark] = per.get(mark, 0) + 1
    cells = {}
    for key, per in counts.items():
        total = sum(per.values())
        if per.get("MISMATCH"):
            cells[key] = f"MISMATCH {per['MISMATCH']}/{total}"
        else:
            cells[key] = ", ".join(f"{m} {n}" for m, n in sorted(per.items()))
    srcs = sorted({k[0] for k in counts}, key=_order)
    dsts = sorted({k[1] for k in counts}, key=_order)
    return srcs, dsts, cells


def _order(name: str) -> tuple[bool, str]:
    """Containers first, then hosts and addresses; each alphabetically (c2 before c10 is not attempted)."""
    return (":" in name or name[:1].isdigit(), name)
