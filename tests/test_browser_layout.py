"""Headless Chromium (Debian's) renders each example edition at phone and desktop widths.

Playwright drives /usr/bin/chromium (never `playwright install`). Remote images are answered
with a local grey PNG so the layout is real and nothing leaves the machine. Screenshots go to a
temporary folder (printed with -s, kept by pytest under its basetemp) for a person to look at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import chromium
from tests.support.edition import (
    example_posts,
    grey_png,
    make_post,
    message_for,
    newsletter,
)

WIDTHS = (320, 600)
# Both widths in light mode, the phone in dark mode too (most dark-mode reading is on phones).
VIEWS = [(320, "light"), (600, "light"), (320, "dark")]
PICTURE = grey_png()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def _serve_locally(route) -> None:
    request = route.request
    if request.url.startswith("file:"):
        route.continue_()
    elif request.resource_type == "image":
        route.fulfill(status=200, content_type="image/png", body=PICTURE)
    else:
        route.abort()


@pytest.fixture(scope="module")
def pages(browser):
    """One tab per view, reused for every edition (a new tab costs more than a page load)."""
    tabs = {}
    for width, scheme in VIEWS:
        page = browser.new_page(viewport={"width": width, "height": 800}, color_scheme=scheme)
        page.route("**/*", _serve_locally)
        tabs[width, scheme] = page
    yield tabs
    for page in tabs.values():
        page.close()


def check_layout(pages, html_file: Path, shots: Path, name: str) -> list[str]:
    """Problems seen at each width and colour scheme; screenshots saved either way."""
    problems = []
    for (width, scheme), page in pages.items():
        page.goto(html_file.as_uri(), wait_until="load")
        scroll_width, inner_width, container_right, missing_alt, background = page.evaluate(
            """() => {
                const container = document.querySelector('.container');
                return [
                    document.documentElement.scrollWidth,
                    window.innerWidth,
                    container.getBoundingClientRect().right,
                    [...document.images]
                        .filter(i => !(i.getAttribute('alt') || '').trim()).map(i => i.src),
                    getComputedStyle(container).backgroundColor,
                ];
            }"""
        )
        page.screenshot(path=str(shots / f"{name}-{width}-{scheme}.png"), full_page=True)
        where = f"{name} at {width}px ({scheme})"
        if scroll_width > inner_width:
            problems.append(f"{where}: scrolls sideways ({scroll_width} > {inner_width})")
        if container_right > inner_width + 0.5:
            problems.append(f"{where}: the column reaches {container_right:.0f}px")
        if missing_alt:
            problems.append(f"{where}: images without alt: {missing_alt}")
        dark = background != "rgb(255, 255, 255)"
        if dark != (scheme == "dark"):
            problems.append(f"{where}: container background {background} in {scheme} mode")
    return problems


def test_example_editions_fit_phone_and_desktop_widths(pages, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    problems = []
    for number, post in enumerate(example_posts(), start=1):
        html = message_for(newsletter(post)).get_body(("html",)).get_content()
        page = tmp_path / f"edition-{number}.html"
        page.write_text(html, encoding="utf-8")
        problems += check_layout(pages, page, shots, f"edition-{number}")
    print(f"\nscreenshots: {shots}")
    assert len(list(shots.glob("*.png"))) == 5 * len(VIEWS)
    assert not problems, "\n".join(problems) + f"\n(screenshots in {shots})"


def test_wide_feed_content_does_not_break_the_phone_layout(pages, tmp_path: Path) -> None:
    wide = (
        '<p><img src="https://blog.example.com/huge.jpg" width="3000" height="2000" alt="Huge"></p>'
        "<p>" + "https://blog.example.com/a/very/long/unbroken/address/" * 6 + "</p>"
        "<pre>" + "x" * 300 + "</pre>"
        "<table><tr>" + "".join(f"<td>cell{n}</td>" for n in range(8)) + "</tr></table>"
        '<iframe src="https://www.youtube.com/embed/dQw4w9WgXcQ" width="1200" height="700">'
        "</iframe>"
    )
    html = message_for(newsletter(make_post(wide))).get_body(("html",)).get_content()
    page = tmp_path / "wide.html"
    page.write_text(html, encoding="utf-8")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    problems = check_layout(pages, page, shots, "wide")
    assert not problems, "\n".join(problems) + f"\n(screenshots in {shots})"


def as_gmail_shows_it(html: str) -> str:
    """Gmail, Yahoo and AOL webmail turn <body> into a <div> that keeps none of its styles."""
    html = re.sub(r"<body\b[^>]*>", "<div>", html, count=1)
    return html.replace("</body>", "</div>", 1)


def without_style_blocks(html: str) -> str:
    """As the clients that strip <style> (and its @media) show it: inline styles only."""
    return re.sub(r"<style\b.*?</style>", "", html, flags=re.S)


def article_typography(page) -> dict[str, list[list[str]]]:
    """Computed font family, size and colour of the title, byline and every article paragraph."""
    return page.evaluate(
        """() => {
            const look = e => {
                const s = getComputedStyle(e);
                return [s.fontFamily, s.fontSize, s.color];
            };
            return {
                title: [look(document.querySelector('h1'))],
                byline: [look(document.querySelector('.byline'))],
                article: [...document.querySelectorAll('.content p')].map(look),
                reply: [look(document.querySelector('.reply-text'))],
            };
        }"""
    )


def test_the_edition_keeps_its_typography_where_body_or_style_is_dropped(
    browser, pages, tmp_path: Path
) -> None:
    """Screenshots of the edition as Gmail shows it and without <style>, at 320 and 600 px.

    As Gmail shows it (its <style> and @media kept) the edition must look as intended at the
    same width; without <style> every width looks like the desktop edition (no @media at all),
    read at 800 px, wider than the phone rules' 620 px.
    """
    html = message_for(newsletter(example_posts()[0])).get_body(("html",)).get_content()
    original = tmp_path / "original.html"
    original.write_text(html, encoding="utf-8")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    intended = {}
    for width in WIDTHS:
        pages[width, "light"].goto(original.as_uri(), wait_until="load")
        intended[width] = article_typography(pages[width, "light"])
    desktop = browser.new_page(viewport={"width": 800, "height": 800})
    desktop.route("**/*", _serve_locally)
    desktop.goto(original.as_uri(), wait_until="load")
    intended["desktop"] = article_typography(desktop)
    desktop.close()
    assert intended["desktop"]["article"], "the example edition has article paragraphs"
    georgia = 'Georgia, "Times New Roman", serif'
    assert intended["desktop"]["article"][0][:2] == [georgia, "18px"]
    assert intended[320]["article"][0][:2] == [georgia, "17px"]  # the phone size from @media
    problems = []
    for width in WIDTHS:
        page = pages[width, "light"]
        for view, transform, expected in (
            ("gmail", as_gmail_shows_it, intended[width]),
            ("no-style", without_style_blocks, intended["desktop"]),
        ):
            variant = tmp_path / f"{view}-{width}.html"
            variant.write_text(transform(html), encoding="utf-8")
            page.goto(variant.as_uri(), wait_until="load")
            page.screenshot(path=str(shots / f"{view}-{width}.png"), full_page=True)
            seen = article_typography(page)
            for part, looks in seen.items():
                assert len(looks) == len(expected[part])
                for number, (got, meant) in enumerate(zip(looks, expected[part], strict=True)):
                    where = f"{view} at {width}px, {part} {number}"
                    aspects = zip(("font", "size", "colour"), got, meant, strict=True)
                    for what, value, want in aspects:
                        if value != want:
                            problems.append(f"{where}: {what} {value!r}, not {want!r}")
    print(f"\nscreenshots: {shots}")
    assert len(list(shots.glob("*.png"))) == 2 * len(WIDTHS)
    assert not problems, "\n".join(problems) + f"\n(screenshots in {shots})"
