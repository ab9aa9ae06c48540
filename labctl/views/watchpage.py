"""The live class view as one self-contained page (`labctl grade --class --watch N --serve`).

The page carries its style and script inline and fetches nothing but its own `board.json`, from the server that
served it, every few seconds; it redraws in place, so a student's fix shows without a reload. Every text that
comes from a host or a file (student names, findings) is put in with `textContent`, never parsed as markup.
A click on a student opens their details (every task, every finding, the hint), kept open across redraws."""

from __future__ import annotations

import json
from html import escape
from typing import Any

STYLE = """
body { font-family: sans-serif; margin: 1.2em; color: #222; }
h1 { font-size: 1.3em; margin: 0 0 0.2em 0; }
.meta { color: #555; font-size: 0.9em; margin-bottom: 0.8em; }
.stale { color: #b00020; font-weight: bold; }
table.board { border-collapse: collapse; }
table.board th, table.board td { border: 1px solid #bbb; padding: 0.3em 0.5em; vertical-align: top; }
table.board th { background: #f0f0f0; }
tr.student { cursor: pointer; }
tr.student:hover { background: #f6f6ff; }
tr.selected { outline: 2px solid #3050c0; }
td.pass { background: #d4f4d2; color: #124d16; text-align: center; }
td.fail { background: #fde2e1; color: #7a0010; font-size: 0.85em; max-width: 22em; }
td.fail b { font-size: 1.1em; }
td.notgraded { background: #eee; color: #555; font-size: 0.85em; }
td.total { text-align: right; font-weight: bold; }
tr.full td.total { color: #186a1f; }
.since { color: #7a0010; font-weight: bold; white-space: nowrap; }
tfoot td { background: #f6f6f6; font-weight: bold; text-align: center; }
#details { margin-top: 1.2em; border-top: 1px solid #bbb; padding-top: 0.6em; }
#details li.ok { color: #186a1f; } #details li.bad { color: #b00020; }
.hint { color: #444; font-style: italic; }
"""

SCRIPT = """
"use strict";
let board = JSON.parse(document.getElementById("board").textContent);
let selected = null;
let lastOk = Date.now();
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function dur(s) {
  if (s === null || s === undefined) return "";
  s = Math.floor(s);
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
  return Math.floor(s / 3600) + "h" + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + "m";
}
function render() {
  const t = board.totals;
  document.getElementById("title").textContent =
    "class " + board.class + ": " + board.exercise + " \u2014 " + (board.title || "");
  document.getElementById("totals").textContent =
    t.full_marks + " of " + t.students + " student(s) at full marks; " + t.points + "/" + t.max_points +
    " points in all" + (t.not_graded ? "; " + t.not_graded + " not graded" : "");
  document.getElementById("graded").textContent =
    "round " + board.round + ", last graded " + board.graded_at + " (" + board.round_s + "s), every " +
    board.interval_s + "s";
  const table = el("table", {class: "board", id: "board-table"});
  const head = el("tr");
  head.appendChild(el("th", {}, "student"));
  for (const task of board.tasks) head.appendChild(el("th", {title: task.title}, task.id + " (" + task.points + ")"));
  head.appendChild(el("th", {}, "total"));
  table.appendChild(el("thead")).appendChild(head);
  const body = table.appendChild(el("tbody"));
  for (const s of board.students) {
    const tr = el("tr", {class: "student" + (s.ok ? " full" : "") + (s.name === selected ? " selected" : ""),
                         "data-student": s.name});
    tr.appendChild(el("th", {}, s.name));
    if (s.error) {
      const td = el("td", {class: "notgraded", colspan: String(board.tasks.length)}, "not graded: " + s.error + " ");
      td.appendChild(el("span", {class: "since"}, "for " + dur(s.failing_for_s)));
      tr.appendChild(td);
    } else {
      for (const c of s.cells) {
        if (c.ok) {
          tr.appendChild(el("td", {class: "pass", "data-task": c.task}, c.points + "/" + c.max_points));
          continue;
        }
        const td = el("td", {class: "fail", "data-task": c.task});
        td.appendChild(el("b", {}, c.points + "/" + c.max_points));
        td.appendChild(el("span", {class: "since"}, " for " + dur(c.failing_for_s)));
        td.appendChild(el("br"));
        td.appendChild(document.createTextNode(c.message));
        tr.appendChild(td);
      }
    }
    tr.appendChild(el("td", {class: "total"}, s.points + "/" + s.max_points));
    tr.addEventListener("click", () => { selected = (selected === s.name ? null : s.name); render(); });
    body.appendChild(tr);
  }
  const foot = el("tr");
  foot.appendChild(el("td", {}, "passed"));
  for (const task of board.tasks) foot.appendChild(el("td", {}, t.passed_by_task[task.id] + "/" + t.graded));
  foot.appendChild(el("td", {}, t.points + "/" + t.max_points));
  table.appendChild(el("tfoot")).appendChild(foot);
  document.getElementById("board-table").replaceWith(table);
  renderDetails();
}
function renderDetails() {
  const box = document.getElementById("details");
  box.replaceChildren();
  const s = board.students.find(x => x.name === selected);
  if (!s) { box.appendChild(el("p", {class: "meta"}, "click a student for their details")); return; }
  box.appendChild(el("h2", {}, s.name + ": " + s.points + "/" + s.max_points + " points"));
  if (s.error) box.appendChild(el("p", {class: "stale"}, "not graded: " + s.error));
  for (const [host, why] of Object.entries(s.unreachable)) {
    box.appendChild(el("p", {class: "stale"}, host + ": " + why));
  }
  for (const task of s.tasks) {
    box.appendChild(el("h3", {}, (task.ok ? "PASS " : "FAIL ") + task.id + " " + task.points + "/" +
                                 task.max_points + ": " + task.title));
    const ul = box.appendChild(el("ul"));
    for (const f of task.findings) {
      ul.appendChild(el("li", {class: f.ok ? "ok" : "bad"}, (f.ok ? "+ " : "- ") + f.text));
    }
    if (!task.ok && task.hint) box.appendChild(el("p", {class: "hint"}, "hint: " + task.hint));
  }
}
async function refresh() {
  try {
    const res = await fetch("board.json", {cache: "no-store"});
    if (!res.ok) throw new Error("HTTP " + res.status);
    board = await res.json();
    lastOk = Date.now();
    document.getElementById("stale").textContent = "";
    render();
  } catch (e) {
    document.getElementById("stale").textContent =
      "the server does not answer (" + e.message + "); showing the board of " + board.graded_at;
  }
}
render();
setInterval(refresh, POLL_MS);
"""


def poll_ms(interval_s: float) -> int:
    """How often the page asks for the board: twice a round, between 1 and 5 seconds."""
    return int(1000 * min(5.0, max(1.0, interval_s / 2)))


def to_page(board: dict[str, Any]) -> str:
    """The page, with the current board inline so it shows at once, before its first refresh."""
    data = json.dumps(board).replace("<", "\\u003c")      # no `</script>` can end the block early
    title = f"labctl class {board.get('class')}: {board.get('exercise')}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
            '<h1 id="title"></h1>\n<div class="meta"><span id="totals"></span><br><span id="graded"></span> '
            '<span id="stale" class="stale"></span></div>\n<table id="board-table"></table>\n'
            '<div id="details"></div>\n'
            f'<script type="application/json" id="board">{data}</script>\n'
            f"<script>{SCRIPT.replace('POLL_MS', str(poll_ms(float(board.get('interval_s') or 5))))}</script>\n"
            "</body></html>\n")
