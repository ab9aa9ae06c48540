"""The lab's picture (labctl graph) and the HTML verdict, built from status captured on real sandbox hosts (Docker
20.10.24, seed lab up). Rendering through Graphviz is checked where `dot` is installed (make deps installs it)."""

from __future__ import annotations

import copy
import dataclasses
import re
import shutil
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from labctl.executors import graph as graph_exec
from labctl.plan.status import HostState, LabStatus, summarize
from labctl.plan.verify import Check, Result
from labctl.views import graph, html

from .test_preflight_and_status import INV, SEED, captured, parse_status

UNDERLAY = {"store": "198.18.0.11", "node1": "198.18.0.12", "node2": "198.18.0.13"}


def status(**changes: object) -> dict:
    raw = {h: dataclasses.replace(parse_status(h, captured(f"status-{h}.txt")), vnis={"ov": 256})
           for h in ("node1", "node2")}   # vnis: what status' VNI fact (facts.docker.vnis) found on that lab
    result = summarize(INV, SEED, raw).as_json()
    result["control"] = {"plane": "kvstore", "requested": "auto", "hosts": {}}
    result["store"] = {"backend": "etcd", "host": "store", "url": "etcd://198.18.0.11:2379", "running": True,
                       "error": None}
    result.update(changes)
    return result


def topology(st: dict | None = None) -> graph.Topology:
    return graph.build(LabStatus.from_json(st or status()), SEED, UNDERLAY)


def names(t: graph.Topology) -> set[str]:
    """Every host, network and container name drawn (the first word of each label)."""
    found = {b.label[0].split()[0] for b in t.boxes} | {n.label[0].split()[0] for n in t.shared}
    return found | {n.label[0].split()[0] for b in t.boxes for n in b.nodes}


def test_every_host_network_container_and_the_store_is_drawn() -> None:
    t = topology()
    assert {"node1", "node2", "store", "ov", "mv", "c1", "c2", "c3", "c4", "etcd"} <= names(t)
    ov = next(n for n in t.shared if n.label[0] == "ov")
    assert "VNI 256" in ov.label and "control plane: kvstore" in ov.label and "overlay 172.30.0.0/16" in ov.label
    node1 = next(b for b in t.boxes if b.label[0] == "node1")
    assert node1.label[1] == "198.18.0.12" and node1.label[2] == "Docker 20.10.24+dfsg1"
    c1 = next(n for n in node1.nodes if n.label[0] == "c1")
    assert "mv 172.29.0.11" in c1.label
    assert all(n.mark == "ok" for b in t.boxes for n in b.nodes)
    assert len([e for e in t.edges if e[0] == c1.id]) == 2, "c1 hangs on ov and mv"


def test_missing_extra_and_stopped_are_marked() -> None:
    st = status()
    st["containers"] = [c for c in st["containers"] if c["name"] != "c4"]
    c2 = next(c for c in st["containers"] if c["name"] == "c2")
    c2["state"] = "exited"
    extra = copy.deepcopy(c2) | {"name": "byhand", "state": "running", "lab": "seed-overlay"}
    st["containers"].append(extra)
    t = topology(st)
    marks = {n.label[0]: n.mark for b in t.boxes for n in b.nodes}
    assert marks["c4"] == "missing" and marks["c2"] == "stopped" and marks["byhand"] == "extra"
    dot = graph.to_dot(t)
    assert re.search(r'n_ctr_c4 \[label="c4\\n.*\(missing\)", .*color="red3".*style="dashed"', dot)
    assert "(extra: not in the playbook)" in dot
    mermaid = graph.to_mermaid(t)
    assert ":::missing" in mermaid and ":::extra" in mermaid and "flowchart TB" in mermaid


def test_a_host_without_dockerd_and_an_absent_network() -> None:
    raw = {"node1": parse_status("node1", captured("status-node1.txt")),
           "node2": HostState("node2", error="[node2] ssh: timed out")}
    st = summarize(INV, SEED, raw)
    t = graph.build(st, SEED, UNDERLAY)
    node2 = next(b for b in t.boxes if b.label[0] == "node2")
    assert node2.mark == "stopped" and "[node2] ssh: timed out" in node2.label
    assert {n.label[0]: n.mark for n in node2.nodes}["c3"] == "missing"


def test_labels_are_escaped_for_dot_and_mermaid() -> None:
    t = graph.Topology('lab "x"', [graph.Box("n_host_a", ['a"b', "1.2.3.4"])], [], [])
    assert 'label="a\\"b\\n1.2.3.4"' in graph.to_dot(t)
    assert "a#quot;b" in graph.to_mermaid(t)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed (make deps installs graphviz)")
def test_svg_parses_and_names_everything() -> None:
    st = status()
    st["containers"] = [c for c in st["containers"] if c["name"] != "c4"]
    svg = graph_exec.render(topology(st), "svg").decode()
    root = ET.fromstring(svg)
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    for name in ("node1", "node2", "store", "ov", "mv", "c1", "c2", "c3", "c4", "VNI 256"):
        assert name in texts, name
    assert "(missing)" in texts
    png = graph_exec.render(topology(), "png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


class Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.tags: list[str] = []
        self.attrs: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.append(dict(attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def results(fail: bool) -> list[Result]:
    out = []
    for src, dst, expect in (("c1", "c3", "reach"), ("c3", "c1", "reach"), ("c1", "host:node1", "isolated")):
        check = Check(src, "node1", dst, "node2", "ov", "172.30.0.1", expect, "ip", "both on ov")
        observed = "isolated" if fail and src == "c1" and expect == "reach" else expect
        out.append(Result(check, observed, cause="VXLAN (UDP 4789) is dropped on node2" if observed != expect else ""))
    return out


def test_html_page_is_self_contained_and_marks_mismatches() -> None:
    page = html.to_html("seed-overlay", results(True), 1.5, {"modes": {"node1": "fping"}},
                        '<?xml version="1.0"?><!DOCTYPE svg><svg xmlns="http://www.w3.org/2000/svg"><text>c1</text>'
                        "</svg>")
    parser = Text()
    parser.feed(page)
    text = " ".join(parser.text)
    assert "FAILED" in text and "VXLAN (UDP 4789) is dropped on node2" in text and "expected because" in text
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page and "<svg" in page
    assert not [a for a in parser.attrs if a.get("src") or (a.get("href") or "").startswith("http")], \
        "nothing is fetched"
    assert "script" not in parser.tags and "link" not in parser.tags
    assert 'class="mismatch"' in page
    ok_page = html.to_html("seed-overlay", results(False), 1.5, None, None, "no picture: dot missing")
    assert 'class="mismatch"' not in ok_page and ">OK<" in ok_page and "no picture: dot missing" in ok_page
    assert html.to_html("<b>", [], 0).count("<b>") == 0, "names are escaped"
