"""The reader's edition, the digest and the confirmation email are built the way robust email
frameworks build them, so Outlook for Windows, Gmail, Yahoo and the apps that drop <body> or
<style> still show the edition's type, spacing and width."""

from __future__ import annotations

from dataclasses import replace

import pytest
from lxml import html as lxml_html

from syndicate.audience import optin
from syndicate.render import email, make_environment
from syndicate.render.digest import digest_post
from tests.support.edition import (
    ROOT,
    SEND_DATE,
    example_posts,
    make_post,
    newsletter,
    shipped_settings,
)

HTML5_ONLY = {"article", "aside", "figure", "figcaption", "footer", "header", "main", "nav"}
HTML5_ONLY |= {"section", "time", "cite", "mark", "summary", "details"}
EDITION = "email/edition.html.j2"
TYPOGRAPHY = ("font-family", "font-size", "line-height", "color")


def styles(element: lxml_html.HtmlElement) -> dict[str, str]:
    pairs = (d.split(":", 1) for d in (element.get("style") or "").split(";") if ":" in d)
    return {name.strip().lower(): value.strip() for name, value in pairs}


def our_templates_only() -> str:
    """An edition whose body is one plain paragraph: everything else is our templates."""
    return newsletter(make_post("<p>One plain paragraph.</p>")).html


def digest_html() -> str:
    settings = shipped_settings()
    env = make_environment(ROOT / "templates")
    digest = digest_post(example_posts(), settings, env, SEND_DATE)
    return newsletter(replace(digest, id=100)).html


def confirm_html() -> str:
    settings = shipped_settings()
    env = make_environment(ROOT / "templates")
    msg = optin.build_message(settings, env, "zoe@example.org", "Zoë", "https://x.example/c/1")
    return msg.content.html


DOCUMENTS = {"edition": our_templates_only, "digest": digest_html, "confirm": confirm_html}


@pytest.mark.parametrize("name", DOCUMENTS)
def test_outlook_for_windows_gets_its_head_block_ghost_table_and_cell_padding(name: str) -> None:
    html = DOCUMENTS[name]()
    doc = lxml_html.document_fromstring(html)
    assert 'xmlns:o="urn:schemas-microsoft-com:office:office"' in html
    assert "<o:PixelsPerInch>96</o:PixelsPerInch>" in html
    assert "mso-table-lspace: 0pt; mso-table-rspace: 0pt" in html
    assert "mso-line-height-rule" in html
    assert '<!--[if mso]><table role="presentation" align="center" width="600"' in html
    assert "box-sizing" not in html
    if name != "digest":  # the digest carries the example posts' own markup
        padded_divs = [d for d in doc.iter("div") if "padding" in styles(d)]
        assert not padded_divs, [lxml_html.tostring(d)[:80] for d in padded_divs]
    layout = [t for t in doc.iter("table") if t.get("role") == "presentation"]
    assert layout and all(t.get("cellpadding") == "0" for t in layout)
    cells = [doc.find_class(c)[0] for c in ("frame-cell", "container-cell", "footer-cell")]
    assert all(c.tag == "td" and "padding" in styles(c) for c in cells)
    container = doc.find_class("container")[0]
    assert container.tag == "table" and styles(container)["max-width"] == "600px"
    preheader = doc.find_class("preheader")[0]
    assert preheader.get("aria-hidden") == "true"
    assert styles(preheader)["display"] == "none" and styles(preheader)["mso-hide"] == "all"


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_cell_that_carries_text_has_its_own_typography(name: str) -> None:
    """Gmail, Yahoo and AOL turn <body> into a bare <div>; Outlook's apps drop it: type and
    colour on <body> alone would leave the article in the client's default font."""
    doc = lxml_html.document_fromstring(DOCUMENTS[name]())
    carriers = [
        td
        for td in doc.iter("td")
        if (td.text or "").strip() or any(child.tag in ("p", "h1", "h2", "a") for child in td)
    ]
    carriers += doc.find_class("content")
    assert len(carriers) >= 2
    for element in carriers:
        missing_styles = [p for p in TYPOGRAPHY if p not in styles(element)]
        assert not missing_styles, (element.get("class"), missing_styles)
    for heading in doc.iter("h1", "h2"):
        assert "font-family" in styles(heading) and "color" in styles(heading)


@pytest.mark.parametrize("name", ["edition", "confirm"])
def test_our_templates_use_no_html5_only_elements(name: str) -> None:
    """Yahoo, AOL and Outlook for Windows strip figure, figcaption, time, cite and friends."""
    doc = lxml_html.document_fromstring(DOCUMENTS[name]())
    assert not {e.tag for e in doc.iter() if isinstance(e.tag, str)} & HTML5_ONLY


def test_the_edition_stays_small() -> None:
    """The frame is a small share of Gmail's ~102 KB clipping limit; the demo edition is small."""
    assert len(our_templates_only().encode()) < 8_000
    assert len(newsletter(example_posts()[0]).html.encode()) < 15_000


def test_dark_mode_where_supported_and_light_inline_colours_everywhere() -> None:
    html = our_templates_only()
    doc = lxml_html.document_fromstring(html)
    style = doc.find(".//style").text
    assert "@media (prefers-color-scheme: dark)" in style
    assert '<meta name="color-scheme" content="light dark">' in html
    cell = doc.find_class("container-cell")[0]
    assert styles(cell)["background"] == "#fff" and styles(cell)["color"] == "#222"


def test_the_classes_that_replace_html5_tags_are_styled() -> None:
    """sanitize.py turns figure, figcaption, cite and time into div/p/span with these classes;
    the edition's stylesheet gives them the look the HTML5 tags had."""
    settings = shipped_settings()
    env = make_environment(ROOT / "templates")
    post = make_post("<p>x</p>")
    context = email.post_context(post, settings)
    context.update(
        title="T",
        language="en",
        direction="ltr",
        preheader="p",
        preheader_spacer="",
        clipped=False,
        body_html=(
            '<div class="figure"><img src="https://x.example/a.png" alt="A">'
            '<p class="caption">The lane</p></div>'
            '<blockquote><p>Words.</p><span class="cite">Someone</span></blockquote>'
            '<div class="details"><p class="summary">More</p><p>A <span class="mark">hit</span>'
            "</p></div>"
        ),
    )
    doc = lxml_html.document_fromstring(email.inline_css(env.get_template(EDITION).render(context)))
    figure = doc.find_class("figure")[0]
    assert styles(figure)["margin"] == "24px 0"
    caption = styles(doc.find_class("caption")[0])
    assert caption["font-family"].startswith("Helvetica") and caption["font-size"] == "13px"
    cite = styles(doc.find_class("cite")[0])
    assert cite["display"] == "block" and cite["font-style"] == "normal"
    assert styles(doc.find_class("summary")[0])["font-weight"] == "bold"
    assert styles(doc.find_class("mark")[0])["background"] == "#fbeeb8"


def test_a_feed_figure_caption_looks_like_a_caption_whatever_the_sanitiser_makes_of_it() -> None:
    post = make_post(
        '<figure><img src="/a.jpg" alt="A lane"><figcaption>The lane in June</figcaption></figure>'
    )
    doc = lxml_html.document_fromstring(newsletter(post).html)
    caption = next(e for e in doc.iter() if (e.text or "").strip() == "The lane in June")
    assert styles(caption)["font-size"] == "13px"
    assert styles(caption)["font-family"].startswith("Helvetica")
