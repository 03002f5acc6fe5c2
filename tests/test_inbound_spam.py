"""The optional spam check with the real SpamAssassin (`spamassassin -L`, no daemon: spamd is
slower to start than the two messages here take). Network tests off, Bayes off: repeatable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from syndicate.inbound import pipeline
from syndicate.inbound.steps import parse
from syndicate.models import ReplyKind
from syndicate.runtime import Runtime
from tests.support.inbound import edit, fixture, load, require_tool, sent_project

GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def test_spamassassin_marks_spam_and_passes_a_real_reply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = require_tool("spamassassin")
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "prefs").write_text("", encoding="utf-8")
    project = sent_project(tmp_path / "project")
    command = [
        binary,
        "-L",
        "-p",
        str(tmp_path / "prefs"),
        "--cf=use_bayes 0",
        "--cf=bayes_auto_learn 0",
    ]
    config = project / "settings.toml"
    edit(config, 'spam_check = "off"', 'spam_check = "spamassassin"')
    edit(config, "spam_command = []", f"spam_command = {json.dumps(command)}")
    settings, engine, key = load(project)
    spam = fixture("thunderbird_en.eml").replace(b"I disagree, gently", GTUBE + b"\nI disagree")
    with engine.connect() as conn:
        spam_result = pipeline.classify(
            conn, parse.parse(spam, source="t"), Runtime(settings, key=key)
        )
        ham_result = pipeline.classify(
            conn, parse.parse(fixture("thunderbird_en.eml"), source="t"), Runtime(settings, key=key)
        )
    assert spam_result.kind is ReplyKind.SPAM
    assert "spamassassin: score" in spam_result.reason
    assert ham_result.kind is ReplyKind.COMMENT
