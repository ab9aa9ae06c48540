"""Ask hosts for facts: one SSH round trip per host for any set of `labctl.facts.Fact`s (the batcher's executor
half; the script and its parsing are pure, in labctl.facts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fabric import Connection

from labctl.facts import Answers, Fact, answers, script


def ask(conn: Connection, host: str, facts: Sequence[Fact[Any]], warn: bool = True) -> Answers:
    """One round trip: every fact's command, in one script. warn=False: a failing last command raises (the
    script ends with `echo`, so in practice only a lost connection or a dead shell does)."""
    out = conn.run(script(facts), hide=True, warn=warn)
    return answers(host, facts, str(out.stdout))
