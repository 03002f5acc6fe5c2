"""Make feed HTML safe and self-contained before it reaches a template.

Two passes. First lxml reshapes what email clients cannot show: lazy-loaded images get a real
``src``, oversized images are scaled to the column, embeds (video players, tweets, WordPress
embed blocks) become a linked thumbnail or a plain link, and headings are shifted below the
edition's own ``<h1>``. Then nh3 (Ammonia) keeps only an allow-list of tags and attributes, so
scripts, frames, styles, event handlers and ``javascript:`` URLs cannot survive whatever the
first pass did.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qs, urljoin, urlparse

import nh3
from lxml import etree
from lxml import html as lxml_html

# Content width of the edition's column: 600 px less 2 × 32 px padding (templates/email).
COLUMN_WIDTH = 536

ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "caption",
    "code",
    "col",
    "colgroup",
    "dd",
    "del",
    "dfn",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "ins",
    "kbd",
    "li",
    "ol",
    "p",
    "pre",
    "q",
    "s",
    "small",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "u",
    "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "blockquote": {"cite", "class"},
    "ol": {"start"},
    # Only the classes this module sets itself (see _CLASSES), so templates can style them.
    "p": {"class"},
    "div": {"class"},
    "span": {"class"},
}
URL_ATTRIBUTES = {("a", "href"), ("img", "src"), ("blockquote", "cite")}
URL_SCHEMES = {"http", "https", "mailto"}
# HTML5-only elements mail clients do not know, as the HTML4 element and class they become.
HTML4_EQUIVALENTS = {
    "figure": ("div", "figure"),
    "figcaption": ("p", "caption"),
    "cite": ("span", "cite"),
    "time": ("span", "time"),
    "details": ("div", "details"),
    "summary": ("p", "summary"),
    "mark": ("span", "mark"),
}
_CLASSES = {"sy-embed", "sy-tweet", "sy-table"} | {c for _, c in HTML4_EQUIVALENTS.values()}
# Void in HTML5 but not to libxml2, which parses what follows them as their content.
_VOID_UNKNOWN_TO_LIBXML2 = ("embed", "source", "track", "wbr", "keygen")

_LAZY_SRC_ATTRIBUTES = ("data-src", "data-lazy-src", "data-original", "data-orig-file")
_LAZY_SRCSET_ATTRIBUTES = ("srcset", "data-srcset", "data-lazy-srcset")
_YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{6,20}$")
_URL_IN_TEXT = re.compile(r"https?://\S+")
# C0 controls other than tab and line ends: never meaningful in HTML, and lxml refuses them.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
log = logging.getLogger(__name__)


def sanitize(html: str, base_url: str, *, fallback_alt: str = "Picture") -> str:
    """Drop scripts, frames, styles and event handlers; make links and images absolute.

    `fallback_alt` is the alt text of an image the feed gave none (its caption wins if it
    has one), so every image says something to a screen reader or a client blocking images.
    """
    reshaped = reshape(html, base_url, fallback_alt)

    def filter_attribute(tag: str, attribute: str, value: str) -> str | None:
        if (tag, attribute) in URL_ATTRIBUTES:
            absolute = urljoin(base_url, value.strip())
            return absolute if urlparse(absolute).scheme.lower() in URL_SCHEMES else None
        if attribute == "class":
            kept = [c for c in value.split() if c in _CLASSES]
            return " ".join(kept) or None
        return value

    return nh3.clean(
        reshaped,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        attribute_filter=filter_attribute,
        link_rel="noopener",
        strip_comments=True,
    )


def reshape(html: str, base_url: str, fallback_alt: str = "Picture") -> str:
    """The lxml pass: what an email client cannot display becomes something it can."""
    html = _CONTROL_CHARACTERS.sub("", html)
    if not html.strip():
        return ""
    try:
        root = lxml_html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError) as exc:
        log.warning("feed HTML could not be reshaped (%s); it is only sanitised", exc)
        return html
    _unnest_void_elements(root)
    etree.strip_elements(root, "script", "style", "template", with_tail=False)
    _drop_duplicate_noscript(root)
    for img in root.iter("img"):
        _resolve_lazy_image(img, base_url)
    for figure in list(root.iter("figure")):
        if "wp-block-embed" in figure.get("class", ""):
            _replace_embed_figure(figure, base_url)
    for tweet in list(root.iter("blockquote")):
        if "twitter-tweet" in tweet.get("class", "") or "instagram-media" in tweet.get("class", ""):
            _mark_tweet(tweet)
    for frame in list(root.iter("iframe", "embed", "object", "video", "audio")):
        _replace_player(frame, base_url)
    for img in list(root.iter("img")):
        if not (img.get("src") or "").strip():
            _remove_keeping_tail(img)
            continue
        _fit_to_column(img)
        _ensure_alt(img, fallback_alt)
    _demote_headings(root)
    for table in list(root.iter("table")):
        _wrap_table(table)
    _use_html4_elements(root)
    return "".join(
        [root.text or ""]
        + [lxml_html.tostring(child, encoding="unicode", method="html") for child in root]
    )


def _unnest_void_elements(root: etree._Element) -> None:
    """`<embed src=x><p>b</p>` parses as an embed holding the paragraph: move it back out."""
    for element in list(root.iter(*_VOID_UNKNOWN_TO_LIBXML2)):
        parent = element.getparent()
        if parent is None or (not element.text and len(element) == 0):
            continue
        children = list(element)
        tail = element.tail or ""
        element.tail, element.text = element.text, None
        if children:
            children[-1].tail = (children[-1].tail or "") + tail
        else:
            element.tail = (element.tail or "") + tail
        position = parent.index(element)
        for offset, child in enumerate(children, start=1):
            parent.insert(position + offset, child)


def _use_html4_elements(root: etree._Element) -> None:
    """No HTML5-only element reaches a mail client; their text stays, classes say what they were."""
    for element in list(root.iter(*HTML4_EQUIVALENTS)):
        tag, name = HTML4_EQUIVALENTS[element.tag]
        element.tag = tag
        element.attrib.clear()
        element.set("class", name)


def _resolve_lazy_image(img: etree._Element, base_url: str) -> None:
    """WordPress and lazy-load plugins park the real URL in data-* or srcset attributes."""
    src = (img.get("src") or "").strip()
    placeholder = not src or src.startswith("data:") or "lazy" in src.rsplit("/", 1)[-1]
    if placeholder:
        real = next((img.get(a) for a in _LAZY_SRC_ATTRIBUTES if img.get(a, "").strip()), None)
        if real is None:
            srcset = next((img.get(a) for a in _LAZY_SRCSET_ATTRIBUTES if img.get(a)), "")
            real = _best_from_srcset(srcset)
        if real:
            img.set("src", urljoin(base_url, real.strip()))
        elif src.startswith("data:"):
            img.set("src", "")
    width = img.get("width") or img.get("data-width")
    height = img.get("height") or img.get("data-height")
    if width and height:
        img.set("width", width)
        img.set("height", height)


def _best_from_srcset(srcset: str) -> str | None:
    """The candidate closest to twice the column width (sharp on retina, not huge)."""
    candidates: list[tuple[float, str]] = []
    for part in srcset.split(","):
        bits = part.strip().split()
        if not bits:
            continue
        descriptor = bits[1] if len(bits) > 1 else "1x"
        try:
            size = float(descriptor[:-1])
        except ValueError:
            continue
        if descriptor.endswith("x"):
            size *= COLUMN_WIDTH
        candidates.append((size, bits[0]))
    if not candidates:
        return None
    return min(candidates, key=lambda c: abs(c[0] - 2 * COLUMN_WIDTH))[1]


def _fit_to_column(img: etree._Element) -> None:
    """Width/height attributes no wider than the column (Outlook obeys only attributes)."""
    width, height = _pixels(img.get("width")), _pixels(img.get("height"))
    for attribute in ("width", "height"):
        img.attrib.pop(attribute, None)
    if width is None:
        return
    if width > COLUMN_WIDTH:
        if height is not None:
            height = round(height * COLUMN_WIDTH / width)
        width = COLUMN_WIDTH
    img.set("width", str(width))
    if height is not None:
        img.set("height", str(height))


def _pixels(value: str | None) -> int | None:
    match = re.fullmatch(r"\s*(\d+)(?:px)?\s*", value or "")
    return int(match.group(1)) if match and int(match.group(1)) > 0 else None


def _ensure_alt(img: etree._Element, fallback: str) -> None:
    if (img.get("alt") or "").strip():
        return
    figure = next((a for a in img.iterancestors("figure")), None)
    caption = figure.find(".//figcaption") if figure is not None else None
    caption_text = " ".join(caption.text_content().split()) if caption is not None else ""
    img.set("alt", caption_text or (img.get("title") or "").strip() or fallback)


def _drop_duplicate_noscript(root: etree._Element) -> None:
    """Lazy-load plugins repeat the image inside <noscript>; keep it only if it is the only one."""
    for noscript in list(root.iter("noscript")):
        previous = noscript.getprevious()
        lazy_sibling = previous is not None and previous.tag == "img"
        if lazy_sibling:
            _remove_keeping_tail(noscript)
        else:
            noscript.drop_tag()


def _replace_embed_figure(figure: etree._Element, base_url: str) -> None:
    """A WordPress embed block: an iframe, or just the URL as text inside a wrapper div."""
    if figure.find(".//blockquote") is not None:
        figure.drop_tag()  # a tweet or post quoted in full: _mark_tweet keeps its text
        return
    frame = next(figure.iter("iframe", "embed", "video"), None)
    url = frame.get("src") if frame is not None else None
    if not url:
        match = _URL_IN_TEXT.search(figure.text_content())
        url = match.group(0) if match else None
    caption = figure.find(".//figcaption")
    caption_text = " ".join(caption.text_content().split()) if caption is not None else ""
    if not url:
        _remove_keeping_tail(figure)
        return
    replacement = _embed_link(urljoin(base_url, url), caption_text)
    replacement.tail = figure.tail
    figure.getparent().replace(figure, replacement)


def _replace_player(frame: etree._Element, base_url: str) -> None:
    if frame.getparent() is None:
        return
    url = frame.get("src") or frame.get("data") or ""
    if not url:
        source = frame.find(".//source")
        url = source.get("src", "") if source is not None else ""
    poster = frame.get("poster")
    title = (frame.get("title") or "").strip()
    if not url:
        _remove_keeping_tail(frame)
        return
    replacement = _embed_link(urljoin(base_url, url), title, poster=poster)
    replacement.tail = frame.tail
    frame.getparent().replace(frame, replacement)


def _embed_link(url: str, title: str, poster: str | None = None) -> etree._Element:
    """A clickable thumbnail when the provider has a predictable one, else a plain link."""
    page, provider, thumbnail = _describe_embed(url)
    thumbnail = thumbnail or poster
    label = f"Watch “{title}” on {provider}" if title else f"Open this on {provider}"
    if provider in ("YouTube", "Vimeo") and not title:
        label = f"Watch the video on {provider}"
    paragraph = etree.Element("p", {"class": "sy-embed"})
    link = etree.SubElement(paragraph, "a", {"href": page})
    if thumbnail:
        picture = etree.SubElement(link, "img", {"src": thumbnail, "alt": label})
        if provider == "YouTube":  # hqdefault.jpg is 480 × 360
            picture.set("width", "480")
            picture.set("height", "360")
        etree.SubElement(paragraph, "br")
        link = etree.SubElement(paragraph, "a", {"href": page})
    link.text = f"▶ {label}" if provider in ("YouTube", "Vimeo") else label
    return paragraph


def _describe_embed(url: str) -> tuple[str, str, str | None]:
    """(page URL a reader can open, provider name, thumbnail URL or None)."""
    parsed = urlparse(url)
    host = (parsed.hostname or "").removeprefix("www.").removeprefix("m.")
    video_id = None
    if host in ("youtube.com", "youtube-nocookie.com"):
        if parsed.path.startswith(("/embed/", "/shorts/", "/live/")):
            video_id = parsed.path.split("/")[2]
        else:
            video_id = (parse_qs(parsed.query).get("v") or [""])[0]
    elif host == "youtu.be":
        video_id = parsed.path.strip("/").split("/")[0]
    if video_id and _YOUTUBE_ID.match(video_id):
        return (
            f"https://www.youtube.com/watch?v={video_id}",
            "YouTube",
            f"https://i.ytimg.com/vi/{video_id}/hqdefault.jpg",
        )
    if host in ("vimeo.com", "player.vimeo.com"):
        numbers = [p for p in parsed.path.split("/") if p.isdigit()]
        page = f"https://vimeo.com/{numbers[0]}" if numbers else url
        return page, "Vimeo", None
    if host in ("twitter.com", "x.com"):
        return url, "X (Twitter)", None
    return url, host or "the web", None


def _mark_tweet(tweet: etree._Element) -> None:
    """Keep the tweet's text and links as a quotation; it already ends with a link to it."""
    tweet.set("class", "sy-tweet")
    links = [a.get("href") for a in tweet.iter("a") if a.get("href")]
    if not links:
        return
    status = next((h for h in reversed(links) if "/status/" in h), links[-1])
    paragraph = etree.SubElement(tweet, "p")
    link = etree.SubElement(paragraph, "a", {"href": status})
    link.text = "View the post"


def _wrap_table(table: etree._Element) -> None:
    """A wide table scrolls inside its own box instead of widening the whole edition."""
    parent = table.getparent()
    if parent is None or (parent.tag == "div" and "sy-table" in parent.get("class", "")):
        return
    if any(a.tag == "table" for a in table.iterancestors()):
        return
    box = etree.Element("div", {"class": "sy-table"})
    box.tail, table.tail = table.tail, None
    parent.replace(table, box)
    box.append(table)


def _demote_headings(root: etree._Element) -> None:
    """The edition's title is the only <h1>; the post's headings start at <h2>."""
    levels = [int(el.tag[1]) for el in root.iter("h1", "h2", "h3", "h4", "h5", "h6")]
    if not levels or min(levels) >= 2:
        return
    shift = 2 - min(levels)
    for el in list(root.iter("h1", "h2", "h3", "h4", "h5", "h6")):
        el.tag = f"h{min(int(el.tag[1]) + shift, 6)}"


def _remove_keeping_tail(element: etree._Element) -> None:
    parent = element.getparent()
    if parent is None:
        return
    tail = element.tail or ""
    previous = element.getprevious()
    if previous is not None:
        previous.tail = (previous.tail or "") + tail
    else:
        parent.text = (parent.text or "") + tail
    parent.remove(element)
