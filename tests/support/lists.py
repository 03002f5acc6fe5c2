"""Subscriber list files as an export tool writes them, and the readers a database holds."""

from __future__ import annotations

import os
import time
from pathlib import Path

from syndicate import db
from syndicate.models import RecipientKind

HOUR_AGO_NS = (int(time.time()) - 3600) * 1_000_000_000


def write_export(path: Path, text: str) -> None:
    """An export written an hour ago (older than lists.RACY_SECONDS)."""
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(HOUR_AGO_NS, HOUR_AGO_NS))


def reader_keys(engine: db.Engine) -> set[str]:
    with engine.connect() as conn:
        return {row.email_key for row in db.recipients.list_recipients(conn, RecipientKind.READER)}
