"""The fact batcher: any set of facts in one shell script, each answer parsed by its own fact, whatever the
other commands print or how they fail. The script is run for real by /bin/sh here (no host needed)."""

from __future__ import annotations

import subprocess

import pytest

from labctl import facts
from labctl.facts import END, Fact, answers, fact, script
from labctl.facts.host import PROBE_TOOLS, Underlay, parse_underlay

WORDS = fact("test.words", "printf 'a b\\nc\\n'", str.split)
FAILS = fact("test.fails", "echo partial; false; echo after-false", str.splitlines)
NOISY = fact("test.noisy", "echo 'x; y && z' | tr -d ';' 2>/dev/null", str.strip)
HOSTED: Fact[str] = Fact("test.hosted", "echo up", lambda host, text: f"{host}:{text.strip()}")


def run(text: str) -> str:
    return subprocess.run(["/bin/sh", "-c", text], capture_output=True, text=True, timeout=20, check=True).stdout


def test_one_script_answers_every_fact_even_after_one_fails() -> None:
    asked = [WORDS, FAILS, NOISY, HOSTED]
    got = answers("node1", asked, run(script(asked)))
    assert got.complete
    assert got[WORDS] == ["a", "b", "c"]
    assert got[FAILS] == ["partial", "after-false"], "a failing command does not end the group or the script"
    assert got[NOISY] == "x y && z"
    assert got[HOSTED] == "node1:up", "a fact's parser gets the host's name"


def test_an_answer_cut_off_is_told_from_an_empty_one() -> None:
    asked = [WORDS, FAILS]
    out = run(script(asked))
    cut = out[:out.index(FAILS.marker)]
    got = answers("node1", asked, cut)
    assert not got.complete
    assert got[WORDS] == ["a", "b", "c"] and got[FAILS] == [], "a missing part is parsed from nothing"


def test_a_banner_before_the_first_marker_is_ignored() -> None:
    got = answers("node1", [WORDS], "Welcome to node1\n" + run(script([WORDS])))
    assert got[WORDS] == ["a", "b", "c"]


def test_a_fact_not_asked_is_an_error_that_names_it() -> None:
    got = answers("node1", [WORDS], run(script([WORDS])))
    with pytest.raises(KeyError, match="test.fails"):
        got[FAILS]
    assert got.get(FAILS, ["default"]) == ["default"]


def test_bad_and_repeated_names_are_refused() -> None:
    with pytest.raises(ValueError, match="does not match"):
        fact("Bad Name", "true", str)
    with pytest.raises(ValueError, match="asked twice in one batch: test.words"):
        script([WORDS, fact("test.words", "true", str)])


def test_markers_in_the_script_match_the_parser() -> None:
    text = script([WORDS])
    assert f"echo '{WORDS.marker}'" in text and text.endswith(f"echo '{END}'")
    assert facts.split(f"{WORDS.marker}\nq\n{END}\n", ["test.words"]) == ({"test.words": "q\n"}, True)


def test_host_facts_parse_nothing_as_unknown() -> None:
    assert PROBE_TOOLS.parse("h", "") is None
    assert PROBE_TOOLS.parse("h", "probe-tools-missing: fping\n") == ("fping",)
    assert parse_underlay("") == Underlay("", 1500)
    assert parse_underlay("2: eth1    inet 198.18.0.12/24 scope global eth1\n9000\n") == Underlay("198.18.0.12", 9000)


def test_the_service_manager_follows_each_hosts_init_not_its_provider() -> None:
    from types import SimpleNamespace

    from labctl.executors.services import ByHostInit, remember_init
    from labctl.facts.host import INIT

    assert INIT.parse("h", "systemd\n") == "systemd"
    assert INIT.parse("h", "none\n") == "none" and INIT.parse("h", "") == "none", "no answer: no systemd assumed"
    vm = SimpleNamespace(host="192.0.2.10", port=22)
    sandbox = SimpleNamespace(host="192.0.2.11", port=22)
    remember_init(vm, "systemd")        # what preflight's round trip said of each host
    remember_init(sandbox, "none")
    chooser = ByHostInit()
    assert chooser.manager(vm).kind == "systemd"
    assert chooser.manager(sandbox).kind == "supervised"
