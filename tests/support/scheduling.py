"""Helpers for the scheduling tests: a blog whose feed file we write, settings edits, a clock
we move by hand, and the messages the outbox transport wrote (real .eml files)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from syndicate import db, settings
from syndicate.db.sends import SendListing

ITEM = """<item><title>{title}</title><link>https://blog.example.com/{n}/</link>
<guid isPermaLink="false">https://blog.example.com/?p={n}</guid>
<pubDate>{date}</pubDate><description><![CDATA[<p>Summary of {title}</p>]]></description>
<content:encoded><![CDATA[<p>The whole of {title}.</p>]]></content:encoded></item>"""

TORONTO = "America/Toronto"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


class Blog:
    """The author's blog: a feed file in the project that grows one post at a time."""

    def __init__(self, project: Path) -> None:
        self.path = project / "blog.xml"
        self.items: list[tuple[int, str]] = []
        set_key(project / "settings.toml", "feed", "source", "blog.xml")
        self.write()

    def publish(self, title: str) -> None:
        self.items.append((len(self.items) + 1, title))
        self.write()

    def write(self) -> None:
        entries = "".join(
            ITEM.format(n=n, title=title, date=f"Mon, {n:02d} Jun 2026 10:00:00 +0000")
            for n, title in self.items
        )
        self.path.write_text(
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
            f"<title>Blog</title><link>https://blog.example.com/</link>{entries}"
            "</channel></rss>",
            encoding="utf-8",
        )


def set_key(config: Path, section: str, key: str, value: object) -> None:
    """Set `key` in `[section]` of a settings file (the key must already be there)."""
    text = config.read_text(encoding="utf-8")
    start = text.index(f"[{section}]\n")
    pattern = re.compile(rf"^{re.escape(key)} = .*$", re.MULTILINE)
    match = pattern.search(text, start)
    assert match, f"{key} not in [{section}]"
    rendered = str(value).lower() if isinstance(value, bool) else f'"{value}"'
    if isinstance(value, int | float) and not isinstance(value, bool):
        rendered = str(value)
    text = text[: match.start()] + f"{key} = {rendered}" + text[match.end() :]
    config.write_text(text, encoding="utf-8")


def configure(project: Path, **keys: object) -> settings.Settings:
    """configure(project, newsletter_policy="manual", column_embargo="+2d", ...)."""
    config = project / "settings.toml"
    for name, value in keys.items():
        section, _, key = name.partition("__")
        section = {"newsletter": "channels.newsletter", "column": "channels.column"}.get(
            section, section
        )
        set_key(config, section, key, value)
    return settings.load(config)


@dataclass
class Clock:
    """Time that moves only when a test says so (or something sleeps): a Runtime's clock."""

    at: datetime

    def __call__(self) -> datetime:
        return self.at

    def now(self) -> datetime:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)

    def advance(self, **delta: float) -> datetime:
        self.at += timedelta(**delta)
        return self.at


def outbox(project: Path) -> list[EmailMessage]:
    parser = BytesParser(policy=policy.default)
    folder = project / "outbox"
    if not folder.exists():
        return []
    return [parser.parsebytes(p.read_bytes()) for p in sorted(folder.glob("*.eml"))]


def sent_to(project: Path, subject_part: str = "") -> list[str]:
    return [
        m["To"].addresses[0].addr_spec for m in outbox(project) if subject_part in str(m["Subject"])
    ]


def sends(engine) -> list[SendListing]:
    with engine.connect() as conn:
        return sorted(db.sends.list_sends(conn, 500), key=lambda s: s.id)


def readers(project: Path) -> int:
    return len((project / "subscribers" / "readers.csv").read_text().strip().splitlines()) - 1
