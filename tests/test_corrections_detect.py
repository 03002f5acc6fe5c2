"""Corrections, detection: which paragraphs of a post editors already have changed, in words."""

from __future__ import annotations

import dataclasses

import pytest

from syndicate.corrections.detect import compare, detect, ordinal, pieces
from tests.support.column import make_post

BODY = (
    "<p>My neighbour Harold retired in March.</p>"
    "<p>He builds walls now, one stone at a time.</p>"
    "<h2>The bakery</h2>"
    "<p>Every morning he stops at Smith's Bakery on Mill Lane.</p>"
    '<figure><img src="https://blog.example.com/wall.jpg" alt="">'
    "<figcaption>Harold's wall in June. Photo: Jane Marlowe</figcaption></figure>"
    "<p>The job is not the work.</p>"
)
TITLE = "Walls and words"
ORIGINAL = make_post(BODY, title=TITLE)


def edited(body: str = BODY, title: str = TITLE):
    return dataclasses.replace(ORIGINAL, content_html=body, title=title)


def test_pieces_are_numbered_as_the_draft_shows_them() -> None:
    labels = [p.label for p in pieces(ORIGINAL)]
    assert labels == [
        "headline",
        "1st paragraph",
        "2nd paragraph",
        "1st subhead",
        "3rd paragraph",
        "photo caption",
        "4th paragraph",
    ]


@pytest.mark.parametrize(
    ("new", "summary", "removed", "added"),
    [
        # the start
        (
            edited(BODY.replace("retired in March", "retired in May")),
            "changes the 1st paragraph",
            ("March.",),
            ("May.",),
        ),
        # the middle
        (
            edited(BODY.replace("Smith's", "Smyth's")),
            "changes the 3rd paragraph",
            ("Smith's",),
            ("Smyth's",),
        ),
        # the headline
        (edited(title="Walls and stones"), "changes the headline", ("words",), ("stones",)),
        # a caption
        (
            edited(BODY.replace("in June", "in July")),
            "changes the photo caption",
            ("June.",),
            ("July.",),
        ),
    ],
)
def test_an_edit_is_described_by_paragraph_and_words(new, summary, removed, added) -> None:
    difference = detect(ORIGINAL, new)
    assert difference is not None
    assert difference.summary == summary
    (change,) = difference.changes
    assert (change.removed, change.added) == (removed, added)


def test_the_headline_change_names_the_words() -> None:
    difference = detect(ORIGINAL, edited(title="Walls and bread"))
    assert difference is not None
    assert difference.lines == ["headline (changed): removed “words”; added “bread”"]


def test_two_changes_and_an_added_and_removed_paragraph() -> None:
    body = (
        BODY.replace("Smith's", "Smyth's")
        .replace("<p>The job is not the work.</p>", "")
        .replace("<p>My neighbour", "<p>Good morning.</p><p>My neighbour", 1)
    )
    difference = detect(ORIGINAL, edited(body, "Walls and bread"))
    assert difference is not None
    assert difference.summary == (
        "changes the headline and the 3rd paragraph; adds a paragraph after the headline; "
        "removes the 4th paragraph"
    )


@pytest.mark.parametrize(
    "body",
    [
        BODY.replace("<p>My neighbour", "<p><strong>My</strong>  neighbour"),  # markup, spaces
        BODY.replace("Smith's", "Smith’s").replace("The job", "The\u00a0job"),  # typography
        BODY.replace("Mill Lane.", '<a href="https://maps.example/">Mill Lane</a>.'),  # a link
        BODY.replace("retired in March.</p>", "retired</p><p>in March.</p>"),  # a split
        BODY.replace("one stone", "one&nbsp;stone").replace("time.", "time\u200b."),
    ],
)
def test_markup_whitespace_and_typography_only_edits_are_no_correction(body: str) -> None:
    assert detect(ORIGINAL, edited(body)) is None


def test_dash_spacing_is_typography() -> None:
    a = edited(BODY.replace("now, one", "now — one"))
    for variant in ("now—one", "now -- one", "now – one"):
        assert detect(a, edited(BODY.replace("now, one", variant))) is None


def test_edits_under_the_threshold_are_ignored() -> None:
    new = edited(BODY.replace("Smith's", "Smyth's"))
    assert detect(ORIGINAL, new, min_words=2) is None
    assert detect(ORIGINAL, new, min_words=1) is not None
    assert compare(ORIGINAL, new).words == 1


def test_ordinals() -> None:
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st",
        "2nd",
        "3rd",
        "4th",
        "11th",
        "12th",
        "13th",
        "21st",
        "22nd",
        "101st",
        "111th",
    ]
