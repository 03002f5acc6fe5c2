"""Helpers for the reader-edition tests: real posts from the example feed, real messages from
the one MIME writer, and a guard for the Debian tools the checks use."""

from __future__ import annotations

import struct
import zlib
from dataclasses import replace
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from syndicate import settings as settings_module
from syndicate.delivery.compose import Sender, compose
from syndicate.delivery.dispatch import make_sender
from syndicate.delivery.mime import as_bytes
from syndicate.feedwatch import feed
from syndicate.models import Channel, Edition, Post, Recipient, RecipientKind
from syndicate.render import make_environment, render_edition
from tests.support.project import ROOT
from tests.support.tools import missing, require_module, require_tool  # noqa: F401 (shared rule)

SEND_DATE = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)


def shipped_settings(**newsletter: object) -> settings_module.Settings:
    settings = settings_module.load(ROOT / "settings.toml")
    if newsletter:
        channels = settings.channels.model_copy(
            update={"newsletter": settings.channels.newsletter.model_copy(update=newsletter)}
        )
        settings = settings.model_copy(update={"channels": channels})
    return settings


def example_posts() -> list[Post]:
    parsed = feed.parse((ROOT / "examples" / "feed.xml").read_bytes(), "examples/feed.xml")
    return [replace(post, id=number) for number, post in enumerate(parsed.posts, start=1)]


def make_post(content_html: str, title: str = "A test post", **fields: object) -> Post:
    values: dict[str, object] = {
        "guid": "https://blog.example.com/?p=1",
        "title": title,
        "link": "https://blog.example.com/2026/11/test-post/",
        "author": "Jane Marlowe",
        "published": SEND_DATE,
        "summary_html": "",
        "content_html": content_html,
        "id": 99,
    }
    values.update(fields)
    return Post(**values)  # type: ignore[arg-type]


def newsletter(post: Post, settings: settings_module.Settings | None = None) -> Edition:
    settings = settings or shipped_settings()
    env = make_environment(ROOT / "templates")
    return render_edition(post, Channel.NEWSLETTER, settings, env)


def reader(name: str = "Zoë Pérez", email: str = "zoe.perez@example.org") -> Recipient:
    return Recipient(id=7, kind=RecipientKind.READER, email=email, name=name)


def sender(settings: settings_module.Settings | None = None) -> Sender:
    return make_sender(settings or shipped_settings(), b"k" * 32)


def message_for(edition: Edition, recipient: Recipient | None = None) -> EmailMessage:
    """The message a transport sends, parsed."""
    return BytesParser(policy=policy.default).parsebytes(message_bytes(edition, recipient))


def message_bytes(edition: Edition, recipient: Recipient | None = None) -> bytes:
    """The bytes a transport sends (the one MIME writer's): CRLF line ends."""
    return as_bytes(compose(edition, recipient or reader(), 3, sender(), SEND_DATE))


def grey_png(width: int = 32, height: int = 20) -> bytes:
    """A small solid PNG served in place of every remote image in browser tests."""
    row = b"\x00" + bytes((176, 164, 140)) * width
    raw = row * height

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
