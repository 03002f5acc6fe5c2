"""The bidirectional marks (LRM, RLM, ALM) and the Unicode line and paragraph separators in a
stranger's text never reach the author's terminal raw: dropped from tables, escaped in --json
(the value a script reads is unchanged)."""

from __future__ import annotations

import json
from pathlib import Path

from syndicate.cli.plain import plain
from tests.support.cli import ok
from tests.test_cli_json_escape import name_zoe

MARKS = "\u200e\u200f\u061c\u2028\u2029"
HOSTILE = "Zoë\u202e\u200f (admin)\u2028Approved\u2029\u061c\u200e"


def test_plain_drops_marks_and_separators_and_keeps_letters() -> None:
    assert plain(HOSTILE) == "Zoë (admin)Approved"
    assert plain("ليلى") == "ليلى"  # right-to-left letters themselves stay


def test_tables_and_json_never_carry_them_raw(project: Path) -> None:
    name_zoe(project, HOSTILE)
    table = ok(project, "subscribers", "list")
    assert "zoe.perez@example.org" in table
    assert not any(mark in table for mark in MARKS + "\u202e")

    out = ok(project, "subscribers", "list", "--json")
    assert not any(mark in out for mark in MARKS + "\u202e")
    assert "\\u200f (admin)\\u2028Approved\\u2029\\u061c\\u200e" in out
    names = {row["email"]: row["name"] for row in json.loads(out)}
    assert names["zoe.perez@example.org"] == HOSTILE
