"""The column draft: its lines, word counts, release lines, .docx, NITF and editor profiles."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime
from pathlib import Path

import docx
import pytest
from lxml import etree

from syndicate.models import Channel
from syndicate.render import EditionCache
from syndicate.render.column import build_draft, render_column, slug_line
from syndicate.render.column_text import (
    count_words,
    html_to_blocks,
    release_stamp,
    split_credit,
)
from syndicate.render.editor_profile import (
    FORMATS,
    EditorProfile,
    ProfileDefaults,
    parse_profile,
)
from tests.conftest import set_setting
from tests.support.column import (
    NEWEST_TITLE,
    attachment,
    editor,
    editors,
    example_post,
    load,
    make_post,
)

SAM = "opinion@dailyherald.example.com"  # America/Toronto, 800 words, txt docx, curly, no links
FIONA = "comment.desk@eveningpost.example.org"  # Europe/London, 650, txt html, straight, links
EMBARGO = datetime(2026, 12, 5, 5, 1, tzinfo=UTC)  # Saturday 00:01 in Toronto


def lines_of(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def test_draft_lines_are_in_order_for_the_example_post(project: Path) -> None:
    settings, env = load(project)
    sam = editors(project)[SAM]
    edition = EditionCache(example_post(project), Channel.COLUMN, settings, env).for_recipient(sam)
    draft = attachment(edition, ".txt").decode("utf-8")
    lines = lines_of(draft)

    assert lines[0] == "JOB-NOT-WORK/"
    assert lines[1] == "FOR RELEASE: UPON RECEIPT"
    assert lines[2].startswith("Eds: ") and "words." in lines[2]
    assert lines[3] == NEWEST_TITLE
    assert lines[4] == "By Jane Marlowe"
    assert lines[5].startswith("My neighbour Harold retired in March")
    assert lines[-3:] == [
        "-30-",
        settings.author.tagline,
        "© 2026 Jane Marlowe. Distributed by Notes from the Margin.",
    ]
    expected_in_order = [
        "“I used to do this with my dad,” he said, not looking up.",
        "PHOTO: Harold’s wall, about two-thirds of the way through. (Credit: Jane Marlowe)",
        "Two different things",
        "The job is what they pay you for. The work is what you’d miss.",
        "— A retired printer, overheard at the Fox & Hounds",
        "The full report is long, earnest and faintly depressing",
        "As I argued at the start of October, I am suspicious",
        "Keeping something back",
        "tell them you’re remembering what your hands are for.",
        "-30-",
    ]
    positions = [
        next(i for i, line in enumerate(lines) if part in line) for part in expected_in_order
    ]
    assert positions == sorted(positions)
    # Clean text: no HTML, no markdown, no link targets for an editor who does not keep links.
    for forbidden in ("<", ">", "##", "](", "http", "&amp;", "**"):
        assert forbidden not in draft, forbidden
    # Paragraphs are separated by one blank line and never hard-wrapped.
    assert "\n\n\n" not in draft
    assert any(len(line) > 300 for line in lines)


def test_links_are_kept_in_parentheses_and_quotes_straightened_for_fiona(project: Path) -> None:
    settings, env = load(project)
    fiona = editors(project)[FIONA]
    edition = EditionCache(example_post(project), Channel.COLUMN, settings, env).for_recipient(
        fiona
    )
    draft = attachment(edition, ".txt").decode("utf-8")
    assert "The full report (https://research.example.org/reports/meaningful-work-2026) is" in draft
    # The relative link of the feed is made absolute against the post's address.
    assert "at the start of October (https://blog.example.com/2026/10/01/older-post/)" in draft
    assert "The job is not the work — and that's the point" in draft
    assert '"Fine, fine,"' in draft
    for curly in "‘’“”":
        assert curly not in draft, curly
    assert "(Photo file: https://blog.example.com/wp-content/uploads/2026/11/photo.jpg)" in draft


def test_straight_quotes_in_the_feed_become_typographic_for_curly_editors(project: Path) -> None:
    settings, _ = load(project)
    post = make_post('<p>She said "it\'s the 90s" and left.</p>', title='"Quoted" title')
    curly = build_draft(post, settings, profile=EditorProfile(quotes="curly"))
    assert curly.blocks[0].text == "She said “it’s the 90s” and left."
    assert curly.headline == "“Quoted” title"
    straight = build_draft(post, settings, profile=EditorProfile(quotes="straight"))
    assert straight.blocks[0].text == 'She said "it\'s the 90s" and left.'


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("dry-stone wall", 2),
        ("mother-in-law's car", 2),
        ("pre- and post-war", 3),
        ("of 1,200 office workers", 4),
        ("roughly 3.5 hours", 3),
        ("the 9.15 meeting", 3),
        ("$40 or 50% off", 4),
        ("U.S. policy", 2),
        ("word—word", 2),
        ("word — word", 2),
        ("word--word", 2),
        ("a&#8212;b", 2),
        ("Fox &amp; Hounds", 3),
        ("hello&nbsp;world", 2),
        ("true… well", 2),
        ("true...well", 2),
        ("co\u00adoperate", 1),
        ("— – - * •", 0),
        ("“Fine, fine,” he said.", 4),
        ("", 0),
    ],
)
def test_word_count_on_tricky_text(text: str, words: int) -> None:
    assert count_words(text) == words


def test_word_count_is_the_body_only(project: Path) -> None:
    settings, _ = load(project)
    post = make_post(
        "<p>One two-three 1,200.</p>"
        '<figure><img src="/a.jpg" alt="alt words here"><figcaption>Caption words here. '
        "Photo: Ann Smith</figcaption></figure>"
        "<h2>Sub head</h2>"
        "<blockquote><p>Quote me</p><cite>Someone</cite></blockquote>"
        "<ul><li>Item one<ul><li>nested</li></ul></li><li>Item two</li></ul>",
        title="Headline words are not counted",
    )
    draft = build_draft(post, settings)
    # One two-three 1,200 | Sub head | Quote me | Someone | Item one | nested | Item two
    assert draft.word_count == 3 + 2 + 2 + 1 + 2 + 1 + 2
    assert [(b.kind, b.line) for b in draft.blocks] == [
        ("paragraph", "One two-three 1,200."),
        ("photo", "PHOTO: Caption words here. (Credit: Ann Smith)"),
        ("subhead", "Sub head"),
        ("quote", "Quote me"),
        ("attribution", "— Someone"),
        ("item", "• Item one"),
        ("item", "    • nested"),
        ("item", "• Item two"),
    ]
    assert draft.blocks[1].src == "https://blog.example.com/a.jpg"


@pytest.mark.parametrize(
    ("caption", "text", "credit"),
    [
        ("Harold’s wall. Photo: Jane Marlowe", "Harold’s wall.", "Jane Marlowe"),
        ("The quay at dawn (Photo by Sam Lee)", "The quay at dawn.", "Sam Lee"),
        ("A market. Credit: Reuters", "A market.", "Reuters"),
        ("No credit in this caption", "No credit in this caption", ""),
        ("Photo: Jane Marlowe", "", "Jane Marlowe"),
        ("Image credits matter", "Image credits matter", ""),
    ],
)
def test_photo_credit_is_split_from_the_caption(caption: str, text: str, credit: str) -> None:
    assert split_credit(caption) == (text, credit)


def test_release_line_in_two_editors_time_zones(project: Path) -> None:
    settings, env = load(project)
    people = editors(project)
    cache = EditionCache(example_post(project), Channel.COLUMN, settings, env, EMBARGO)
    sam_text = cache.for_recipient(people[SAM]).text
    fiona_text = cache.for_recipient(people[FIONA]).text
    toronto = "EMBARGOED UNTIL: Saturday, Dec. 5, 2026, 00:01 ET"
    london = "EMBARGOED UNTIL: Saturday, Dec. 5, 2026, 05:01 GMT"
    # The release time comes first in the author's note, and again in the draft.
    assert lines_of(sam_text)[1] == toronto
    assert lines_of(fiona_text)[1] == london
    assert lines_of(attachment(cache.for_recipient(people[SAM]), ".txt").decode())[1] == toronto
    assert "ET" not in lines_of(fiona_text)[1]
    # In summer the zone names follow daylight time.
    july = datetime(2026, 7, 4, 11, 0, tzinfo=UTC)
    assert release_stamp(july, EditorProfile(timezone="America/Toronto").zone) == (
        "Saturday, July 4, 2026, 07:00 ET"
    )
    assert release_stamp(july, EditorProfile(timezone="Europe/London").zone) == (
        "Saturday, July 4, 2026, 12:00 BST"
    )
    assert release_stamp(EMBARGO, EditorProfile(timezone="Asia/Kolkata").zone) == (
        "Saturday, Dec. 5, 2026, 10:31 IST"
    )


def test_for_release_wording_and_upon_receipt(project: Path) -> None:
    set_setting(
        project / "settings.toml",
        'embargo_wording = "embargoed"',
        'embargo_wording = "for release"',
    )
    settings, _ = load(project)
    post = example_post(project)
    toronto = EditorProfile(timezone="America/Toronto")
    assert build_draft(post, settings, EMBARGO, toronto).release == (
        "FOR RELEASE: Saturday, Dec. 5, 2026, 00:01 ET"
    )
    assert build_draft(post, settings, None, toronto).release == "FOR RELEASE: UPON RECEIPT"


def test_over_limit_warning_uses_each_editors_limit(project: Path) -> None:
    settings, env = load(project)
    post = example_post(project)
    people = editors(project)
    cache = EditionCache(post, Channel.COLUMN, settings, env)
    words = build_draft(post, settings).word_count
    assert 800 < words < 1000  # the example column is a little long for both papers
    sam_eds = lines_of(attachment(cache.for_recipient(people[SAM]), ".txt").decode())[2]
    fiona_eds = lines_of(attachment(cache.for_recipient(people[FIONA]), ".txt").decode())[2]
    assert sam_eds == f"Eds: {words} words. OVER YOUR 800-WORD LIMIT BY {words - 800} WORDS."
    assert fiona_eds == f"Eds: {words} words. OVER YOUR 650-WORD LIMIT BY {words - 650} WORDS."
    assert (
        f"That is {words - 800} over your 800-word limit" in cache.for_recipient(people[SAM]).text
    )
    roomy = editor("roomy@paper.example.com", word_limit="1,500", formats="txt")
    roomy_eds = lines_of(attachment(cache.for_recipient(roomy), ".txt").decode())[2]
    assert roomy_eds == f"Eds: {words} words."
    assert "over your" not in cache.for_recipient(roomy).text


def test_docx_has_every_part_in_its_named_style(project: Path) -> None:
    settings, env = load(project)
    post = example_post(project)
    sam = editors(project)[SAM]
    edition = EditionCache(post, Channel.COLUMN, settings, env, EMBARGO).for_recipient(sam)
    assert [a.filename for a in edition.attachments] == ["job-not-work.txt", "job-not-work.docx"]
    document = docx.Document(io.BytesIO(attachment(edition, ".docx")))
    styled = [(p.style.name, p.text) for p in document.paragraphs]
    sam_profile = EditorProfile(timezone="America/Toronto", word_limit=800)
    draft = build_draft(post, settings, EMBARGO, sam_profile)

    assert styled[:5] == [
        ("Slug", "JOB-NOT-WORK/"),
        ("Release", "EMBARGOED UNTIL: Saturday, Dec. 5, 2026, 00:01 ET"),
        ("Eds", "Eds: " + " ".join(draft.eds)),
        ("Headline", NEWEST_TITLE),
        ("Byline", "By Jane Marlowe"),
    ]
    body = [text for style, text in styled if style == "Body"]
    assert body == [b.text for b in draft.blocks if b.kind == "paragraph"]
    # Every <p> of the post except the one inside the block quote.
    assert len(body) == post.content_html.count("<p>") - 1 == 15
    assert ("Subhead", "Two different things") in styled
    assert (
        "Block Quote",
        "The job is what they pay you for. The work is what you’d miss.",
    ) in styled
    assert (
        "Photo Caption",
        "PHOTO: Harold’s wall, about two-thirds of the way through. (Credit: Jane Marlowe)",
    ) in styled
    assert styled[-3:] == [
        ("End Mark", "-30-"),
        ("Tagline", settings.author.tagline),
        ("Copyright", "© 2026 Jane Marlowe. Distributed by Notes from the Margin."),
    ]
    # Named styles, not direct formatting, so a newsroom system can map them.
    assert all(run.font.bold is None for p in document.paragraphs for run in p.runs)
    assert document.styles["Headline"].font.bold is True
    assert document.core_properties.title == NEWEST_TITLE


def test_nitf_parses_with_the_required_elements(project: Path) -> None:
    settings, env = load(project)
    post = example_post(project)
    nitf_editor = editor("nitf@wire.example.com", timezone="Europe/London", formats="nitf")
    edition = EditionCache(post, Channel.COLUMN, settings, env, EMBARGO).for_recipient(nitf_editor)
    assert [a.filename for a in edition.attachments] == ["job-not-work.xml"]
    root = etree.fromstring(attachment(edition, ".xml"))  # no network: the DTD is not fetched
    assert root.tag == "nitf" and root.get("version") == "-//IPTC//DTD NITF 3.6//EN"
    assert root.findtext("head/title") == NEWEST_TITLE
    docdata = root.find("head/docdata")
    assert docdata.get("management-status") == "embargoed"
    assert docdata.find("date.release").get("norm") == "20261205T050100Z"
    assert docdata.find("du-key").get("key") == "JOB-NOT-WORK"
    assert docdata.find("doc.copyright").get("holder") == "Jane Marlowe"
    assert root.findtext("body/body.head/hedline/hl1") == NEWEST_TITLE
    assert "".join(root.find("body/body.head/byline").itertext()) == "By Jane Marlowe"
    content = root.find("body/body.content")
    paragraphs = [p.text for p in content.findall("p")]
    draft = build_draft(post, settings, EMBARGO)
    assert paragraphs == [b.text for b in draft.blocks if b.kind == "paragraph"] + ["-30-"]
    assert [h.text for h in content.findall("hl2")] == [
        "Two different things",
        "Keeping something back",
    ]
    quote = content.find("bq")
    assert quote.findtext("block/p").startswith("The job is what they pay you for.")
    assert quote.findtext("credit") == "A retired printer, overheard at the Fox & Hounds"
    media = content.find("media")
    assert media.find("media-reference").get("source").endswith("/2026/11/photo.jpg")
    assert media.findtext("media-producer") == "Jane Marlowe"
    assert root.findtext("body/body.end/tagline").startswith("Jane Marlowe writes about work")

    open_draft = render_column(post, settings, env, None, EditorProfile(formats=("nitf",)))
    unembargoed = etree.fromstring(open_draft.attachments[0].data)
    assert unembargoed.find("head/docdata").get("management-status") == "usable"
    assert unembargoed.find("head/docdata/date.release") is None


def test_each_distinct_profile_is_rendered_once(project: Path, caplog) -> None:
    settings, env = load(project)
    people = editors(project)
    cache = EditionCache(example_post(project), Channel.COLUMN, settings, env)
    twin = editor("twin@dailyherald.example.com", **people[SAM].fields)
    first, second, third = (
        cache.for_recipient(people[SAM]),
        cache.for_recipient(twin),
        cache.for_recipient(people[FIONA]),
    )
    assert first is second and first is not third
    assert len(cache._cache) == 2

    # A row with a value that cannot be read still gets the column, and the problem is logged
    # once, naming the editor and the column.
    odd = editor("odd@paper.example.com", timezone="Toronto", formats="docx")
    with caplog.at_level(logging.WARNING):
        edition = cache.for_recipient(odd)
        cache.for_recipient(odd)
    assert [a.filename for a in edition.attachments] == ["job-not-work.docx"]
    assert caplog.text.count("editor odd@paper.example.com: timezone 'Toronto'") == 1
    assert "FOR RELEASE: UPON RECEIPT" in edition.text


def test_an_empty_post_still_makes_a_well_formed_draft(project: Path) -> None:
    settings, env = load(project)
    edition = render_column(make_post(""), settings, env, None, EditorProfile(formats=FORMATS))
    text = attachment(edition, ".txt").decode()
    assert lines_of(text)[2] == "Eds: 0 words."
    assert lines_of(text)[-3] == "-30-"
    assert etree.fromstring(attachment(edition, ".xml")).findtext("head/title") == "A test column"
    assert docx.Document(io.BytesIO(attachment(edition, ".docx"))).paragraphs[3].text == (
        "A test column"
    )


def test_author_notes_give_slug_alternate_headlines_and_note(project: Path) -> None:
    (project / "columns").mkdir()
    (project / "columns/the-job-is-not-the-work.toml").write_text(
        'slug = "job vs work"\n'
        'alternate_headlines = ["What your hands are for", "Keep something back"]\n'
        'note = "Harold is a pseudonym."\n',
        encoding="utf-8",
    )
    settings, env = load(project)
    edition = render_column(
        example_post(project), settings, env, None, EditorProfile(formats=("txt", "nitf"))
    )
    lines = lines_of(attachment(edition, ".txt").decode())
    assert lines[0] == "JOB-VS-WORK/"
    assert lines[2].endswith(
        "Alternate headlines: What your hands are for; Keep something back. Harold is a pseudonym."
    )
    assert [a.filename for a in edition.attachments] == ["job-vs-work.txt", "job-vs-work.xml"]
    nitf = etree.fromstring(attachment(edition, ".xml"))
    assert [h.text for h in nitf.findall("body/body.head/hedline/hl2")] == [
        "What your hands are for",
        "Keep something back",
    ]


def test_broken_notes_file_is_reported_and_the_draft_still_made(project: Path, caplog) -> None:
    (project / "columns").mkdir()
    (project / "columns/the-job-is-not-the-work.toml").write_text('slug = "unclosed\n')
    settings, _ = load(project)
    with caplog.at_level(logging.WARNING):
        draft = build_draft(example_post(project), settings)
    assert draft.slug == "JOB-NOT-WORK/"
    assert "the-job-is-not-the-work.toml: cannot read column notes" in caplog.text


def test_slug_stays_the_same_when_the_title_is_edited() -> None:
    link = "https://blog.example.com/2026/11/26/the-job-is-not-the-work/"
    assert slug_line(NEWEST_TITLE, 3, link) == "JOB-NOT-WORK/"
    assert slug_line("The job isn't the work (updated)", 3, link) == "JOB-NOT-WORK/"
    assert slug_line("In defence of the long lunch", 3, "https://b.example/?p=12") == (
        "DEFENCE-LONG-LUNCH/"
    )


def test_editor_profile_defaults_and_clear_problems() -> None:
    defaults = ProfileDefaults(timezone="America/Toronto", formats=("txt",))
    profile, problems = parse_profile(
        {
            "publication": "The Gazette",
            "timezone": "Mars/Olympus",
            "word_limit": "about 700",
            "formats": "TXT, .docx; pdf",
            "quotes": "fancy",
            "links": "maybe",
        },
        defaults,
        where="editor ed@gazette.example.com",
    )
    assert profile == EditorProfile(
        timezone="America/Toronto",
        word_limit=None,
        formats=("txt", "docx"),
        quotes="curly",
        links=False,
    )
    assert len(problems) == 5
    assert problems[0].startswith("editor ed@gazette.example.com: timezone 'Mars/Olympus'")
    assert "IANA time zone" in problems[0] and "editors.csv" in problems[0]
    assert any("'pdf' is not one of txt, docx, html, nitf" in p for p in problems)
    empty, none = parse_profile({}, defaults)
    assert none == [] and empty.timezone == "America/Toronto" and empty.formats == ("txt",)
    aliased, none = parse_profile(
        {"word_limit": "1,200", "formats": "word xml", "quotes": "typographic", "links": "yes"},
        defaults,
    )
    assert none == []
    assert (aliased.word_limit, aliased.formats, aliased.quotes, aliased.links) == (
        1200,
        ("docx", "nitf"),
        "curly",
        True,
    )


def test_lists_breaks_tables_and_line_breaks_stay_readable() -> None:
    blocks = html_to_blocks(
        '<ol start="3"><li>Third</li><li>Fourth <em>point</em></li></ol>'
        "<hr><p>Roses are red,<br>violets are blue</p>"
        "<table><tr><th>Year</th><th>Jobs</th></tr><tr><td>2025</td><td>1,200</td></tr></table>"
        "Loose text at the end",
        links=False,
    )
    assert [b.line for b in blocks] == [
        "3. Third",
        "4. Fourth point",
        "* * *",
        "Roses are red,\nviolets are blue",
        "Year | Jobs",
        "2025 | 1,200",
        "Loose text at the end",
    ]
