"""The reader's email edition: layout, sanitising, embeds, images, plain text and size."""

from __future__ import annotations

import logging
import re
from email import policy
from email.parser import BytesParser
from typing import ClassVar

import pytest
from lxml import html as lxml_html

from syndicate.render import placeholders as ph
from syndicate.render.email import inline_css
from syndicate.render.sanitize import COLUMN_WIDTH, sanitize
from syndicate.render.text import count_words, html_to_plain
from tests.support.edition import (
    example_posts,
    make_post,
    message_bytes,
    message_for,
    newsletter,
    reader,
    shipped_settings,
)
from tests.support.web import QuietHandler, serving_http

PARSER = BytesParser(policy=policy.default)


def tree(html: str) -> lxml_html.HtmlElement:
    return lxml_html.document_fromstring(html)


@pytest.mark.parametrize("post", example_posts(), ids=lambda p: p.title[:30])
def test_every_example_edition_has_the_newsletter_parts(post) -> None:
    edition = newsletter(post)
    settings = shipped_settings()
    doc = tree(edition.html)
    assert doc.get("lang") == "en"
    assert [h.text_content() for h in doc.iter("h1")] == [post.title]
    assert doc.find(".//title").text == post.title
    preheader = doc.find_class("preheader")[0]
    assert "display:none" in preheader.get("style").replace(" ", "")
    assert len(preheader.text_content().split()) >= 10
    assert "By Jane Marlowe" in doc.find_class("byline")[0].text_content()
    reply = doc.find_class("reply")[0].text_content()
    assert "Reply to this email and it reaches Jane Marlowe" in reply
    footer = doc.find_class("footer")[0]
    assert "You are receiving this because you subscribed" in footer.text_content()
    assert settings.site.postal_address in footer.text_content()
    unsubscribe = [a for a in footer.iter("a") if a.text_content() == "Unsubscribe"]
    assert unsubscribe and unsubscribe[0].get("href") == ph.UNSUBSCRIBE_URL
    assert "max-width:600px" in doc.find_class("container")[0].get("style").replace(" ", "")
    style = doc.find(".//style").text
    assert "prefers-color-scheme: dark" in style and "!important" in style
    assert "max-width: 620px" in style
    for img in doc.iter("img"):
        assert img.get("alt", "").strip(), lxml_html.tostring(img)
    assert len(edition.html.encode()) <= settings.channels.newsletter.max_html_bytes
    assert "Reply to this email and it reaches Jane Marlowe" in edition.text
    assert "Unsubscribe with one click: " + ph.UNSUBSCRIBE_URL in edition.text


def test_placeholders_survive_premailer_and_compose_fills_them() -> None:
    edition = newsletter(example_posts()[0])
    assert f'href="{ph.UNSUBSCRIBE_URL}"' in edition.html
    assert f'href="mailto:{ph.REPLY_ADDRESS}"' in edition.html
    message = message_for(edition)
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert "%%" not in html and "%%" not in text
    unsubscribe = re.search(
        r'href="(https://notes\.example\.com/newsletter/unsubscribe/[^"]+)"', html
    )
    assert unsubscribe and unsubscribe.group(1) in message["List-Unsubscribe"]
    assert "zoe.perez@example.org" in html and 'href="mailto:replies+' in html


def test_newest_example_post_text_keeps_alt_and_caption_apart() -> None:
    text = newsletter(example_posts()[0]).text
    assert "top courseHarold" not in text
    assert (
        "[Picture: A half-rebuilt dry-stone wall beside a country lane, with a flask and a pair "
        "of work gloves resting on the top course]\n\nHarold’s wall, about two-thirds" in text
    )
    assert "“Fine, fine,”" in text  # unicode_snob: curly quotes kept
    assert "[The full report][1]" in text
    assert re.search(r"^\s*\[1\]: <?https://research\.example\.org/reports/", text, re.M)
    assert re.search(r"\[2\]: <?https://blog\.example\.com/2026/10/01/older-post/", text)


def test_column_text_keeps_caption_as_its_own_paragraph() -> None:
    post = example_posts()[0]
    column = html_to_plain(post.content_html, links=False, emphasis=False)
    assert "Harold’s wall, about two-thirds" in column
    assert "\n\nHarold’s wall" in column and "top course" not in column
    assert count_words("a well-known 1,200-word column") == 4


def test_feed_html_is_sanitised_and_made_absolute() -> None:
    nasty = (
        '<p>Hello<script>alert("x")</script> <a href="javascript:alert(1)">click</a>'
        ' <a href="/about/" onclick="steal()">about</a></p>'
        '<p><img src="../pics/cat.jpg" onerror="steal()" alt="A cat"></p>'
        '<iframe src="https://tracker.example.net/frame"></iframe>'
        "<style>p { color: red }</style><object data='x.swf'></object>"
        '<form action="https://evil.example/"><input name="pw"></form>'
        "<table><tr><th>Year</th><td>2026</td></tr></table>"
        "<blockquote><p>Quoted</p></blockquote>\x00\x07<p>After control characters</p>"
    )
    edition = newsletter(make_post(nasty))
    for forbidden in (
        "<script",
        "alert(",
        "javascript:",
        "onerror",
        "onclick",
        "<iframe",
        "<form",
        "<input",
        "<object",
        "color: red",
    ):
        assert forbidden not in edition.html.lower(), forbidden
        assert forbidden not in edition.text.lower(), forbidden
    doc = tree(edition.html)
    content = doc.find_class("content")[0]
    assert content.find(".//img").get("src") == "https://blog.example.com/2026/11/pics/cat.jpg"
    hrefs = [a.get("href") for a in content.iter("a")]
    assert "https://blog.example.com/about/" in hrefs
    assert "https://tracker.example.net/frame" in hrefs  # an unknown frame becomes a plain link
    assert content.find(".//table") is not None and content.find(".//blockquote") is not None
    assert "After control characters" in content.text_content()


def test_wordpress_lazy_images_get_a_real_src_and_fit_the_column() -> None:
    html = (
        '<figure><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" '
        'data-lazy-src="/up/wide.jpg" width="2000" height="1000" alt="Wide">'
        '<noscript><img src="/up/wide.jpg" alt="Wide"></noscript></figure>'
        '<p><img data-src="https://cdn.example.com/a.jpg" alt="Data src"></p>'
        '<p><img srcset="/s-300.jpg 300w, /s-1024.jpg 1024w, /s-2400.jpg 2400w" alt="Set"></p>'
        '<p><img src="/narrow.png" width="200" height="100" alt="Narrow"></p>'
    )
    clean = sanitize(html, "https://blog.example.com/2026/11/post/")
    images = {
        img.get("alt"): img for img in lxml_html.fragment_fromstring(clean, "div").iter("img")
    }
    assert set(images) == {"Wide", "Data src", "Set", "Narrow"}  # the <noscript> copy is gone
    assert images["Wide"].get("src") == "https://blog.example.com/up/wide.jpg"
    assert (images["Wide"].get("width"), images["Wide"].get("height")) == (str(COLUMN_WIDTH), "268")
    assert images["Data src"].get("src") == "https://cdn.example.com/a.jpg"
    assert images["Set"].get("src") == "https://blog.example.com/s-1024.jpg"
    assert (images["Narrow"].get("width"), images["Narrow"].get("height")) == ("200", "100")
    inlined = newsletter(make_post(html)).html
    assert 'width="536" height="268"' in inlined  # premailer left the attributes alone
    assert re.search(r'<img[^>]*style="[^"]*max-width:100%', inlined)


def test_embeds_become_linked_thumbnails_or_links_never_empty_boxes() -> None:
    html = (
        '<iframe src="https://www.youtube.com/embed/dQw4w9WgXcQ?feature=oembed" '
        'title="Wall building in ten minutes"></iframe>'
        '<figure class="wp-block-embed is-type-video is-provider-vimeo wp-block-embed-vimeo">'
        '<div class="wp-block-embed__wrapper"><iframe src="https://player.vimeo.com/video/76979871'
        '?h=8272103f6e"></iframe></div></figure>'
        '<figure class="wp-block-embed is-type-video is-provider-youtube"><div '
        'class="wp-block-embed__wrapper">\nhttps://youtu.be/abcdefghijk\n</div>'
        "<figcaption>The lane</figcaption></figure>"
        '<blockquote class="twitter-tweet"><p lang="en" dir="ltr">Walls are patience.</p>'
        '&mdash; Harold (@harold) <a href="https://twitter.com/harold/status/123">May 1, 2026</a>'
        '</blockquote><script async src="https://platform.twitter.com/widgets.js"></script>'
        '<video src="/media/clip.mp4" poster="/media/poster.jpg"></video>'
    )
    edition = newsletter(make_post(html))
    content = tree(edition.html).find_class("content")[0]
    links = {a.get("href"): a for a in content.iter("a")}
    youtube = links["https://www.youtube.com/watch?v=dQw4w9WgXcQ"]
    assert youtube.find("img") is not None or "YouTube" in youtube.text_content()
    thumbs = [img.get("src") for img in content.iter("img")]
    assert "https://i.ytimg.com/vi/dQw4w9WgXcQ/hqdefault.jpg" in thumbs
    assert "https://i.ytimg.com/vi/abcdefghijk/hqdefault.jpg" in thumbs
    assert "Watch the video on Vimeo" in links["https://vimeo.com/76979871"].text_content()
    assert "The lane" in content.text_content()
    tweet = content.find(".//blockquote")
    assert "Walls are patience." in tweet.text_content()
    assert "https://twitter.com/harold/status/123" in [a.get("href") for a in tweet.iter("a")]
    assert "https://blog.example.com/media/clip.mp4" in links
    assert "https://blog.example.com/media/poster.jpg" in thumbs
    for element in content.iter("figure", "p", "div", "a"):
        has_content = element.text_content().strip() or element.find(".//img") is not None
        assert has_content, f"empty box: {lxml_html.tostring(element)!r}"
    assert "Watch the video on Vimeo" in edition.text


def test_missing_alt_text_comes_from_the_caption_or_a_fallback() -> None:
    html = (
        '<figure><img src="/a.jpg"><figcaption>The allotment in June</figcaption></figure>'
        '<p><img src="/b.jpg" title="Seed packets"><img src="/c.jpg" alt=""></p>'
    )
    content = tree(newsletter(make_post(html)).html).find_class("content")[0]
    assert [img.get("alt") for img in content.iter("img")] == [
        "The allotment in June",
        "Seed packets",
        "Picture",
    ]


def test_post_headings_start_below_the_edition_title() -> None:
    doc = tree(newsletter(make_post("<h1>Part one</h1><p>x</p><h2>Detail</h2><p>y</p>")).html)
    assert [h.text_content() for h in doc.iter("h1")] == ["A test post"]
    assert [h.text_content() for h in doc.iter("h2")] == ["Part one", "Write back"]
    assert [h.text_content() for h in doc.iter("h3")] == ["Detail"]


def test_summary_only_post_links_to_the_full_text() -> None:
    post = make_post("", summary_html="<p>The first lines of a longer piece […]</p>")
    edition = newsletter(post)
    more = tree(edition.html).find_class("more")[0]
    assert "Continue reading" in more.text_content()
    assert more.find(".//a").get("href") == post.link
    assert f"Continue reading: {post.link}" in edition.text


def test_a_200_kb_post_is_cut_at_a_paragraph_with_a_continue_link() -> None:
    paragraphs = [
        f"<p>Paragraph {n:04d}. " + "The wall went up stone by stone, slowly. " * 12 + "</p>"
        for n in range(400)
    ]
    body = "".join(paragraphs)
    assert len(body.encode()) > 200_000
    settings = shipped_settings()
    limit = settings.channels.newsletter.max_html_bytes
    post = make_post(body)
    edition = newsletter(post, settings)
    size = len(edition.html.encode())
    assert limit * 0.8 < size <= limit, size
    content = tree(edition.html).find_class("content")[0]
    kept = [p.text_content() for p in content.iter("p")]
    assert kept[0].startswith("Paragraph 0000.") and len(kept) < 400
    originals = {lxml_html.fragment_fromstring(p).text_content() for p in paragraphs}
    assert all(text in originals for text in kept), "a paragraph was cut in the middle"
    clipped = tree(edition.html).find_class("clipped")[0]
    assert clipped.find(".//a").get("href") == post.link
    assert f"Continue reading: {post.link}" in edition.text
    assert f"Paragraph {len(kept):04d}." not in edition.text
    # After compose fills the placeholders the HTML part is still under Gmail's 102 KB.
    html = message_for(edition).get_body(("html",)).get_content()
    assert len(html.encode()) < 102_000


def test_the_limit_is_a_setting() -> None:
    body = "".join(
        f"<p>Paragraph {n}. " + "Words and more words. " * 20 + "</p>" for n in range(60)
    )
    full = newsletter(make_post(body))
    assert 'class="more clipped"' not in full.html
    small = newsletter(make_post(body), shipped_settings(max_html_bytes=20_000))
    assert len(small.html.encode()) <= 20_000 and 'class="more clipped"' in small.html


def test_one_huge_paragraph_is_cut_between_words() -> None:
    body = "<p>" + "onewordafteranother " * 12_000 + "</p>"
    edition = newsletter(make_post(body))
    assert len(edition.html.encode()) <= shipped_settings().channels.newsletter.max_html_bytes
    paragraph = tree(edition.html).find_class("content")[0].find(".//p").text_content()
    assert paragraph.endswith("onewordafteranother …")


def test_emoji_and_right_to_left_title_are_encoded_and_folded() -> None:
    title = "שלום עולם — مرحبا 🎉 Café notes on walls, lanes and the quiet art of rebuilding"
    edition = newsletter(make_post("<p>Body</p>", title=title))
    raw = message_bytes(edition)
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.decode("ascii")  # every header line is ASCII: RFC 2047 encoded words
    subject_lines = re.search(rb"^Subject:.*?(?=\r\n\S)", head, re.M | re.S).group(0)
    assert b"=?utf-8?" in subject_lines.lower()
    assert all(len(line) <= 78 for line in subject_lines.split(b"\r\n"))
    parsed = PARSER.parsebytes(raw)
    assert parsed["Subject"] == title
    doc = tree(edition.html)
    h1 = doc.find(".//h1")
    assert h1.text_content() == title and h1.get("dir") == "auto"
    assert doc.find(".//title").text == title


def test_cr_lf_in_a_title_cannot_inject_headers() -> None:
    title = "Breaking\r\nBcc: victim@example.net\r\n\r\n<b>body</b>"
    edition = newsletter(make_post("<p>Body</p>", title=title))
    raw = message_bytes(edition)
    parsed = PARSER.parsebytes(raw)
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == "Breaking Bcc: victim@example.net <b>body</b>"
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"^Bcc:", head, re.M | re.I)
    one_line = "Breaking Bcc: victim@example.net <b>body</b>"
    assert tree(edition.html).find(".//title").text == one_line
    assert tree(edition.html).find(".//h1").text_content() == one_line
    assert f"\n{one_line}\n" in edition.text


def test_control_characters_in_a_title_never_reach_a_header() -> None:
    edition = newsletter(make_post("<p>Body</p>", title="Bad\x00title\x1b[31m red\ttab"))
    assert edition.subject == "Bad title [31m red tab"
    head = message_bytes(edition).split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"[\x00-\x08\x0b-\x1f\x7f]", head.replace(b"\r\n", b""))


def test_very_long_title_is_folded_not_cut() -> None:
    title = " ".join(["Extraordinarily"] * 40)
    raw = message_bytes(newsletter(make_post("<p>Body</p>", title=title)))
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= 78 for line in head.split(b"\r\n") if not line.startswith(b"List-"))
    assert PARSER.parsebytes(raw)["Subject"] == title


def test_right_to_left_site_language_sets_direction() -> None:
    settings = shipped_settings()
    site = settings.site.model_copy(update={"language": "he"})
    hebrew = settings.model_copy(update={"site": site})
    doc = tree(newsletter(make_post("<p>שלום</p>"), hebrew).html)
    assert doc.get("lang") == "he" and doc.get("dir") == "rtl"


class _CountingHandler(QuietHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        body = b"p { color: red !important }"
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_premailer_fetches_nothing_and_keeps_quiet(caplog, capfd, tmp_path) -> None:
    local_css = tmp_path / "local.css"
    local_css.write_text("p { color: green }")
    with serving_http(_CountingHandler) as base:
        html = (
            "<html><head>"
            f'<link rel="stylesheet" href="{base}/remote.css">'
            f'<link rel="stylesheet" href="{local_css}">'
            "<style>p { colour: bogus; margin: 0 } @media (max-width: 600px) "
            "{ p { margin: 4px !important } }</style></head><body><p>x</p></body></html>"
        )
        with caplog.at_level(logging.DEBUG):
            out = inline_css(html)
    assert _CountingHandler.hits == []
    assert "green" not in out and "red" not in out
    assert "margin: 4px !important" in out  # strip_important=False keeps responsive overrides
    assert not [r for r in caplog.records if r.name.startswith("CSSUTILS") and r.levelno >= 30]
    assert "Unknown Property" not in capfd.readouterr().err


def test_premailer_runs_once_per_edition_not_per_reader(monkeypatch) -> None:
    """A counting wrapper around the real Premailer (it still does all the work)."""
    from syndicate.render import email as email_module

    runs: list[int] = []
    real = email_module.Premailer

    def counting(*args, **kwargs):
        runs.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(email_module, "Premailer", counting)
    edition = newsletter(example_posts()[0])
    for number in range(20):
        message_for(edition, reader(f"Reader {number}", f"r{number}@example.org"))
    assert len(runs) == 1
    long_body = "".join(f"<p>{n} " + "Stone on stone. " * 40 + "</p>" for n in range(300))
    newsletter(make_post(long_body))
    assert 2 <= len(runs) - 1 <= 4  # a cut edition: full render, empty frame, the cut (rarely more)


def test_bulk_mail_headers_and_a_stable_message_id() -> None:
    edition = newsletter(example_posts()[0])
    first, again = message_for(edition), message_for(edition)
    assert first["Precedence"] == "bulk"
    assert first["X-Auto-Response-Suppress"] == "OOF, AutoReply"
    assert first["List-Id"] == "Notes from the Margin <newsletter.notes.example.com>"
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = (part.strip(" <>") for part in first["List-Unsubscribe"].split(","))
    assert https.startswith("https://") and mailto.startswith("mailto:replies+")
    assert first["Message-ID"] == again["Message-ID"]  # a retried message keeps its id
