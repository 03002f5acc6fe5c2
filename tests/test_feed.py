"""Feed fetching and the safety rules: first run, new posts, edits, 304s, broken feeds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from sqlalchemy import func, select

from syndicate import db, settings
from syndicate.errors import FeedError
from syndicate.feedwatch import feed, watch
from tests.support.web import QuietHandler, serving_http

ITEM = """<item><title>{title}</title><link>https://blog.example.com/{n}/</link>
<guid isPermaLink="false">https://blog.example.com/?p={n}</guid>
<pubDate>{date}</pubDate><description><![CDATA[<p>Summary {n}</p>]]></description>
<content:encoded><![CDATA[<p>{body}</p>]]></content:encoded></item>"""


def rss(items: list[tuple[int, str, str]], body: str = "Body text.") -> bytes:
    entries = "".join(
        ITEM.format(n=n, title=title, date=date, body=body) for n, title, date in items
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>Blog</title>'
        f"<link>https://blog.example.com/</link>{entries}</channel></rss>"
    ).encode()


def catalogue(count: int) -> list[tuple[int, str, str]]:
    return [
        (100 + i, f"Post {i}", f"Mon, {i + 1:02d} Jun 2026 10:00:00 +0000") for i in range(count)
    ]


def load(project: Path) -> settings.Settings:
    return settings.load(project / "settings.toml")


def point_feed_at(project: Path, source: str) -> settings.Settings:
    config = project / "settings.toml"
    config.write_text(
        config.read_text().replace('source = "examples/feed.xml"', f'source = "{source}"')
    )
    return load(project)


def sends(engine) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(db.schema.posts.c.title, db.schema.sends.c.channel)
            .join(db.schema.posts, db.schema.posts.c.id == db.schema.sends.c.post_id)
            .order_by(db.schema.sends.c.id)
        )
        return [tuple(r) for r in rows]


def test_first_run_sends_only_the_newest_post(project: Path) -> None:
    path = project / "blog.xml"
    path.write_bytes(rss(catalogue(12)))
    cfg = point_feed_at(project, str(path))
    engine = db.connect(cfg.database_url)
    report = watch.poll(engine, cfg)
    assert report.first_run
    assert len(report.new_posts) == 12
    assert [p.title for p in report.eligible] == ["Post 11"]
    assert sends(engine) == [("Post 11", "newsletter"), ("Post 11", "column")]

    # A new post appears; an old one is edited. Only the new one is sent.
    items = [*catalogue(12), (500, "Fresh post", "Tue, 30 Jun 2026 10:00:00 +0000")]
    items[3] = (103, "Post 3 (edited title)", items[3][2])
    path.write_bytes(rss(items))
    report = watch.poll(engine, cfg)
    assert not report.first_run
    assert [p.title for p in report.eligible] == ["Fresh post"]
    assert sends(engine)[2:] == [("Fresh post", "newsletter"), ("Fresh post", "column")]
    with engine.connect() as conn:
        assert (
            db.posts.find_post(conn, "https://blog.example.com/?p=103").title
            == "Post 3 (edited title)"
        )

    # Polling the same feed again changes nothing.
    report = watch.poll(engine, cfg)
    assert report.new_posts == [] and report.sends_created == 0
    assert len(sends(engine)) == 4


@pytest.mark.parametrize(("policy", "expected"), [("none", 0), ("all", 6)])
def test_first_run_policy_is_a_setting(project: Path, policy: str, expected: int) -> None:
    path = project / "blog.xml"
    path.write_bytes(rss(catalogue(3)))
    cfg = point_feed_at(project, str(path))
    config = project / "settings.toml"
    config.write_text(config.read_text().replace('first_run = "newest"', f'first_run = "{policy}"'))
    cfg = load(project)
    engine = db.connect(cfg.database_url)
    watch.poll(engine, cfg)
    assert len(sends(engine)) == expected


def test_unusable_feed_is_a_clear_error_and_changes_no_state(project: Path) -> None:
    path = project / "blog.xml"
    path.write_bytes(rss(catalogue(3)))
    cfg = point_feed_at(project, str(path))
    engine = db.connect(cfg.database_url)
    watch.poll(engine, cfg)
    with engine.connect() as conn:
        before = (
            conn.execute(select(func.count()).select_from(db.schema.posts)).scalar(),
            db.inbox_state.get_feed_state(conn, str(path)),
        )

    path.write_bytes(b"<html><body><h1>502 Bad Gateway</h1>")
    with pytest.raises(FeedError) as info:
        watch.poll(engine, cfg)
    assert str(path) in str(info.value) and "not a usable RSS or Atom feed" in str(info.value)
    with engine.connect() as conn:
        after = (
            conn.execute(select(func.count()).select_from(db.schema.posts)).scalar(),
            db.inbox_state.get_feed_state(conn, str(path)),
        )
    assert after == before

    path.unlink()
    with pytest.raises(FeedError, match="feed file not found"):
        watch.poll(engine, cfg)


def test_ill_formed_but_readable_feed_is_used_with_a_warning(caplog) -> None:
    broken = rss(catalogue(2)).replace(b"<title>Post 1</title>", b"<title>Post 1 & more</title>")
    parsed = feed.parse(broken, "blog.xml")
    assert [p.title for p in parsed.posts] == ["Post 0", "Post 1 & more"]
    assert parsed.problems and "not well-formed" in parsed.problems[0]
    assert "not well-formed" in caplog.text


def test_post_identity_falls_back_to_link_and_duplicates_are_reported() -> None:
    content = rss(catalogue(2)).replace(
        b'<guid isPermaLink="false">https://blog.example.com/?p=100</guid>', b""
    )
    content = content.replace(
        b"</channel>", ITEM.format(n=101, title="Dup", date="", body="x").encode() + b"</channel>"
    )
    parsed = feed.parse(content, "blog.xml")
    assert parsed.posts[0].guid == "https://blog.example.com/100/"
    assert [p.guid for p in parsed.posts].count("https://blog.example.com/?p=101") == 1
    assert any("duplicate guid" in p for p in parsed.problems)


class FeedHandler(QuietHandler):
    body = rss(catalogue(3))
    etag = '"v1"'
    requests: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        FeedHandler.requests.append(dict(self.headers))
        if self.headers.get("If-None-Match") == self.etag:
            self.send_response(304)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("ETag", self.etag)
        self.send_header("Last-Modified", "Mon, 01 Jun 2026 10:00:00 GMT")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


@pytest.fixture
def feed_server() -> Iterator[str]:
    FeedHandler.requests = []
    with serving_http(FeedHandler) as base:
        yield f"{base}/feed/"


def test_conditional_get_sends_validators_and_304_parses_nothing(
    project: Path, feed_server: str
) -> None:
    cfg = point_feed_at(project, feed_server)
    engine = db.connect(cfg.database_url)
    first = watch.poll(engine, cfg)
    assert len(first.new_posts) == 3 and not first.not_modified
    second = watch.poll(engine, cfg)
    assert second.not_modified and second.new_posts == []
    assert FeedHandler.requests[1]["If-None-Match"] == '"v1"'
    assert FeedHandler.requests[1]["If-Modified-Since"] == "Mon, 01 Jun 2026 10:00:00 GMT"
    assert len(sends(engine)) == 2


def test_size_cap_and_http_errors_are_reported(feed_server: str) -> None:
    with pytest.raises(FeedError, match="larger than 100 bytes"):
        feed.fetch(feed_server, max_bytes=100)
    with pytest.raises(FeedError, match="could not fetch"):
        feed.fetch("http://127.0.0.1:9/feed/", timeout=2)
