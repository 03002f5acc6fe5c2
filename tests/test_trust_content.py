"""Issue 11 (content) and issue 17: what a feed, a form or a CSV says cannot become a script link,
a header line or an HTML5-only element in the mail."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from email import message_from_bytes, policy
from pathlib import Path
from urllib.parse import urlparse

import pytest
from lxml import html as lxml_html

from syndicate import headers
from syndicate.delivery import compose, notices
from syndicate.delivery.message import Mailbox
from syndicate.delivery.mime import as_bytes
from syndicate.delivery.transports.sendgrid import request_body
from syndicate.feedwatch import feed
from syndicate.render import email as render_email
from syndicate.render.column import build_draft
from syndicate.render.sanitize import sanitize
from tests.support.edition import (
    SEND_DATE,
    make_post,
    newsletter,
    reader,
    sender,
    shipped_settings,
)
from tests.support.inbound import cli

CONTROLS = "\x00\x1b\x07\x7f\x85\x9b\x1c\u2028\r\n\t"
HOSTILE_NAME = f"Eve{CONTROLS}Bcc: victim@example.net\x00[31m"


def test_there_is_one_one_line_and_it_leaves_no_control_character() -> None:
    assert compose.one_line is headers.one_line is render_email.one_line
    cleaned = headers.one_line(HOSTILE_NAME)
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028]", cleaned)
    assert cleaned == "Eve Bcc: victim@example.net [31m"


@pytest.mark.parametrize("kind", ["edition", "notice"])
def test_control_characters_in_a_name_never_reach_the_to_header(kind: str) -> None:
    recipient = reader(name=HOSTILE_NAME)
    if kind == "edition":
        edition = newsletter(make_post("<p>Hello</p>"))
        data = as_bytes(compose.compose(edition, recipient, 3, sender(), SEND_DATE))
    else:
        data = as_bytes(
            notices.notice(
                sender=Mailbox(f"Jane{CONTROLS}Marlowe", "jane@notes.example.com"),
                to=Mailbox(recipient.name, recipient.email),
                reply_to=Mailbox(HOSTILE_NAME, "eve@example.net"),
                subject=f"Re{CONTROLS}: hi",
                text="Hello",
                date=SEND_DATE,
                label="reply",
                number=1,
            )
        )
    head = data.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", head)
    parsed = message_from_bytes(data, policy=policy.default)
    assert parsed["To"].addresses[0].display_name == "Eve Bcc: victim@example.net [31m"
    assert parsed["Bcc"] is None


def test_control_characters_in_a_name_never_reach_the_sendgrid_request() -> None:
    edition = newsletter(make_post("<p>Hello</p>"))
    hostile_sender = replace(sender(), name=f"Jane{CONTROLS}Marlowe")
    message = compose.compose(edition, reader(name=HOSTILE_NAME), 3, hostile_sender, SEND_DATE)
    body = request_body([message], per_recipient_reply=False)
    names = [body["from"]["name"], body["personalizations"][0]["to"][0]["name"]]
    assert names == ["Jane Marlowe", "Eve Bcc: victim@example.net [31m"]


def feed_with_link(link: str) -> bytes:
    return f"""<?xml version="1.0"?><rss version="2.0"><channel><title>Blog</title>
<item><title>Post</title><guid isPermaLink="false">post-1</guid><link>{link}</link>
<description>&lt;p&gt;Words.&lt;/p&gt;</description></item></channel></rss>""".encode()


@pytest.mark.parametrize(
    "link", ["javascript:alert(document.cookie)", " JavaScript:alert(1)", "data:text/html,x"]
)
def test_a_post_link_that_is_not_http_is_dropped_with_a_warning(
    link: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        parsed = feed.parse(feed_with_link(link), "feed.xml")
    [post] = parsed.posts
    assert post.link == ""
    assert any("not an http(s) URL" in problem for problem in parsed.problems)
    assert "not an http(s) URL" in caplog.text
    edition = newsletter(make_post("<p>Words</p>", link=post.link))
    assert "script:" not in edition.html.lower() and "data:" not in edition.html


def test_an_edition_without_a_post_link_has_no_empty_link() -> None:
    """A dropped link leaves no `href=""`: a full post says nothing, a summary links the site."""
    full = newsletter(make_post("<p>Words</p>", link=""))
    assert 'href=""' not in full.html
    assert "Read this on the web" not in full.html and "Read this on the web" not in full.text
    summary_only = make_post("", link="", summary_html="<p>Just the summary.</p>")
    edition = newsletter(summary_only)
    assert 'href=""' not in edition.html
    site = shipped_settings().site.url
    assert f'href="{site}"' in edition.html and f"Continue reading: {site}" in edition.text


def test_an_http_post_link_is_kept() -> None:
    [post] = feed.parse(feed_with_link("https://blog.example.com/p/1"), "feed.xml").posts
    assert post.link == "https://blog.example.com/p/1"


def test_quotation_sources_and_links_are_http_or_mailto_only() -> None:
    body = sanitize(
        '<blockquote cite="javascript:alert(1)"><p>One</p></blockquote>'
        '<blockquote cite="/source"><p>Two</p></blockquote>'
        '<p><a href="java&#09;script:x">three</a> <a href="mailto:a@example.com">four</a>'
        '<img src="data:image/png;base64,AAAA" alt="five"></p>',
        "https://blog.example.com/post/",
    )
    root = lxml_html.fragment_fromstring(body, create_parent="div")
    quotes = root.findall(".//blockquote")
    assert quotes[0].get("cite") is None
    assert quotes[1].get("cite") == "https://blog.example.com/source"
    links = [a.get("href") or "" for a in root.iter("a")]
    assert [urlparse(link).scheme for link in links] == ["https", "mailto"]
    assert all(img.get("src") is None for img in root.iter("img"))
    assert "One" in body and "Two" in body and "three" in body


HTML5_POST = (
    '<figure><img src="https://blog.example.com/wall.jpg">'
    "<figcaption>Harold’s wall. Photo: Jane Marlowe</figcaption></figure>"
    "<blockquote><p>Work is love made visible.</p><cite>Kahlil Gibran</cite></blockquote>"
    '<p>Written on <time datetime="2026-11-30T09:00">Monday morning</time>, '
    "a <mark>marked</mark> word.</p>"
    "<details><summary>More about the wall</summary><p>It is old.</p></details>"
)


def body_of(edition) -> str:
    """The sanitised post inside the edition: between the byline and the "read more" link."""
    return sanitize(HTML5_POST, "https://blog.example.com/2026/11/test-post/")


def test_no_html5_only_element_reaches_the_email() -> None:
    edition = newsletter(make_post(HTML5_POST))
    root = lxml_html.document_fromstring(edition.html)
    html5_only = ("figure", "figcaption", "cite", "time", "details", "summary", "mark")
    # The template's own markup is templates/email's business; the post's is sanitising's.
    post_words = ("Harold", "Gibran", "Monday", "marked", "More about")
    from_post = [
        el.tag
        for el in root.iter(*html5_only)
        if any(word in el.text_content() for word in post_words)
    ]
    assert from_post == []
    assert not re.search(r"<(figure|figcaption|cite|time|details|summary|mark)\b", body_of(edition))
    classes = {el.get("class"): el.text_content() for el in root.iter("div", "p", "span")}
    assert classes["caption"] == "Harold’s wall. Photo: Jane Marlowe"
    assert classes["cite"] == "Kahlil Gibran"
    assert classes["time"] == "Monday morning"
    assert classes["mark"] == "marked"
    assert classes["summary"] == "More about the wall"
    assert "figure" in classes and "details" in classes
    assert "2026-11-30T09:00" not in edition.html


def test_the_column_still_finds_captions_and_quote_attributions_after_the_mapping() -> None:
    draft = build_draft(make_post(HTML5_POST), shipped_settings())
    kinds = [(b.kind, b.text, b.credit) for b in draft.blocks]
    assert ("photo", "Harold’s wall.", "Jane Marlowe") in kinds
    assert ("quote", "Work is love made visible.", "") in kinds
    assert ("attribution", "— Kahlil Gibran", "") in kinds


def test_a_csv_name_with_control_characters_reaches_the_outbox_as_one_clean_line(
    project: Path,
) -> None:
    with (project / "subscribers" / "readers.csv").open("a", encoding="utf-8") as readers:
        readers.write('eve@example.com,"Eve\x1b[31m\x00\x85Bcc: victim@example.net"\n')
    result = cli(project, "run", "--once")
    assert result.returncode == 0, result.stderr.decode()
    [written] = (project / "outbox").glob("d*-eve@example.com.eml")
    head = written.read_bytes().split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", head)
    assert b'\r\nTo: "Eve [31m Bcc: victim@example.net" <eve@example.com>\r\n' in b"\r\n" + head
    assert message_from_bytes(head + b"\r\n\r\n", policy=policy.default)["Bcc"] is None
