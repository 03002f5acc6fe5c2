"""Column test helpers: the example post, settings and editors as the pipeline sees them."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

from jinja2 import Environment

from syndicate import settings
from syndicate.feedwatch import feed
from syndicate.models import Post, Recipient, RecipientKind
from syndicate.render import make_environment
from syndicate.settings import Settings

NEWEST_TITLE = "The job is not the work — and that’s the point"


def load(project: Path) -> tuple[Settings, Environment]:
    config = settings.load(project / "settings.toml")
    return config, make_environment(project / "templates")


def example_post(project: Path) -> Post:
    parsed = feed.parse((project / "examples/feed.xml").read_bytes(), "examples/feed.xml")
    newest = feed.newest_first(parsed.posts)[0]
    assert newest.title == NEWEST_TITLE
    return dataclasses.replace(newest, id=1)


def make_post(body_html: str, title: str = "A test column", link: str = "") -> Post:
    return Post(
        guid="test-1",
        title=title,
        link=link or "https://blog.example.com/2026/11/30/a-test-column/",
        author="Jane Marlowe",
        published=None,
        summary_html="",
        content_html=body_html,
        id=7,
    )


def editors(project: Path) -> dict[str, Recipient]:
    """The shipped editors.csv rows as Recipients, fields exactly as the subscriber sync stores."""
    with (project / "subscribers/editors.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    found = {}
    for number, row in enumerate(rows, start=1):
        fields = {k: v for k, v in row.items() if k not in ("email", "name")}
        found[row["email"]] = Recipient(
            number, RecipientKind.EDITOR, row["email"], row["name"], fields
        )
    return found


def editor(email: str, **fields: str) -> Recipient:
    return Recipient(99, RecipientKind.EDITOR, email, "Test Editor", fields)


def attachment(edition, suffix: str) -> bytes:
    return next(a.data for a in edition.attachments if a.filename.endswith(suffix))
