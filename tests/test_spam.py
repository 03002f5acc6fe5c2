"""SpamAssassin (Debian's, shipped rules, offline) scores every example edition at most 0.0.

The messages are exactly what the transport sends: compose's bytes under policy.SMTP. The From
and Reply-To domains are example domains; the edition, not the test, must be fixed when a rule
fires. `-L` keeps SpamAssassin off the network (no DNS blocklists, no DKIM key lookups), and
Bayes is off so the result does not depend on what was learnt before.
"""

from __future__ import annotations

import mailbox
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.edition import example_posts, message_bytes, newsletter, require_tool


@dataclass(frozen=True)
class Score:
    total: float
    rules: list[tuple[float, str, str]]  # (points, name, description)

    def describe(self) -> str:
        fired = "\n".join(f"  {pts:+.1f} {name}: {text}" for pts, name, text in self.rules)
        return f"score {self.total:+.1f}; rules that fired:\n{fired}"


_TOTAL = re.compile(r"^X-Spam-Status: \w+, score=(-?\d+(?:\.\d+)?)", re.M)
_SEPARATOR = re.compile(r"^From MAILER-DAEMON .*$", re.M)
_RULE = re.compile(r"^\s*(-?\d+\.\d+)\s+([A-Z0-9_]+)\s+(.*)$")


def spamassassin_scores(messages: list[bytes], home: Path) -> list[Score]:
    """Score messages with one `spamassassin -L -t --mbox` run (rules load once, ~1 s)."""
    home.mkdir(parents=True, exist_ok=True)
    box = mailbox.mbox(home / "in.mbox", create=True)
    for raw in messages:
        box.add(raw)
    box.close()
    result = subprocess.run(
        [
            require_tool("spamassassin"),
            "--mbox",
            "-L",
            "-t",
            "-p",
            str(home / "prefs"),
            "--cf=use_bayes 0",
            "--cf=bayes_auto_learn 0",
        ],
        stdin=(home / "in.mbox").open("rb"),
        capture_output=True,
        env={**os.environ, "HOME": str(home)},
        timeout=180,
    )
    output = result.stdout.decode("utf-8", errors="replace")
    reports = [part for part in _SEPARATOR.split(output) if part.strip()]
    assert len(reports) == len(messages), (
        f"expected {len(messages)} reports from SpamAssassin, got {len(reports)}:\n"
        f"{output[:2000]}\n{result.stderr.decode(errors='replace')[:2000]}"
    )
    return [_parse(report) for report in reports]


def _parse(report: str) -> Score:
    total = _TOTAL.search(report)
    assert total, f"no X-Spam-Status in SpamAssassin's report:\n{report[:2000]}"
    details = report.split("Content analysis details:", 1)[-1]
    rules = [
        (float(m.group(1)), m.group(2), m.group(3).strip())
        for m in map(_RULE.match, details.splitlines())
        if m
    ]
    return Score(float(total.group(1)), rules)


def test_every_example_edition_scores_at_most_zero(tmp_path: Path) -> None:
    require_tool("spamassassin")
    posts = example_posts()
    assert len(posts) >= 5
    titles = [post.title for post in posts]
    scores = dict(
        zip(
            titles,
            spamassassin_scores([message_bytes(newsletter(p)) for p in posts], tmp_path),
            strict=True,
        )
    )
    failures = []
    for title, score in scores.items():
        positive = [rule for rule in score.rules if rule[0] > 0]
        if score.total > 0.0 or positive:
            failures.append(f"{title!r}: {score.describe()}")
    assert not failures, "SpamAssassin adds points:\n" + "\n".join(failures)
    # The list headers are recognised: the edition reads as a real mailing list.
    assert all("MAILING_LIST_MULTI" in {r[1] for r in s.rules} for s in scores.values()), {
        t: s.describe() for t, s in scores.items()
    }


def test_the_check_can_fail(tmp_path: Path) -> None:
    """The parser sees positive rules: a message built to look like spam does score."""
    require_tool("spamassassin")
    raw = (
        b"From: winner@example.com\r\nTo: you@example.org\r\nSubject: FREE MONEY!!! "
        b"ACT NOW\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n"
        b"<html><body><font color=#ffffff>viagra</font><p>CLICK HERE to claim your FREE "
        b"prize, 100% GUARANTEED, no credit check, act now!!!</p></body></html>\r\n"
    )
    (score,) = spamassassin_scores([raw], tmp_path)
    assert score.total > 0 and any(points > 0 for points, _, _ in score.rules), score.describe()
