"""What changed in a post that editors already have, paragraph by paragraph, in words.

A post is cut into the pieces an editor sees in the draft (`render.column_text.html_to_blocks`,
the same blocks every column format is built from): the headline, the paragraphs numbered as in
the draft, subheads and photo captions. Each piece is compared by its *normalised* text, so an
edit that only changes markup (tags, links, attributes, how paragraphs are split by tags),
whitespace or typography (curly/straight quotes, dash and ellipsis forms, non-breaking spaces,
soft hyphens, Unicode compatibility forms) is no change at all. Of what remains, an edit that
changes fewer than `min_words` words is ignored too (`[channels.column] corrections_min_words`).

difflib aligns the pieces (a paragraph added or removed shifts no numbers) and then the words
of each changed piece; both are small, so its quadratic worst case does not matter here.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Literal

from syndicate.models import Post
from syndicate.render.column_text import COUNTED_KINDS, html_to_blocks
from syndicate.render.sanitize import sanitize

Action = Literal["changed", "added", "removed"]

_INVISIBLE = re.compile(r"[\u00ad\u200b\u200c\u200d\u2060\ufeff]")
_DASHES = re.compile(r"\s*(?:[\u2012\u2013\u2014\u2015\u2212]|(?<!-)--(?!-)|(?<=\s)-(?=\s))\s*")
_TYPOGRAPHY = str.maketrans(
    {
        "‘": "'",
        "’": "'",
        "‚": "'",
        "‛": "'",
        "′": "'",
        "“": '"',
        "”": '"',
        "„": '"',
        "″": '"',
        "«": '"',
        "»": '"',
    }
)


def spaced(text: str) -> str:
    """Dashes set apart as words of their own, whatever spacing the author typed around them."""
    return " ".join(_DASHES.sub(" — ", text).split())


def normal(text: str) -> str:
    """The text with markup, whitespace and typography differences taken out."""
    text = unicodedata.normalize("NFKC", _INVISIBLE.sub("", text))  # … → ..., nbsp → space
    return spaced(text).replace("—", "-").translate(_TYPOGRAPHY)


@dataclass(frozen=True)
class Piece:
    """One paragraph-level part of a post, as the editor's draft shows it."""

    label: str  # "headline", "4th paragraph", "2nd subhead", "photo caption"
    text: str

    @property
    def key(self) -> str:
        return normal(self.text)


@dataclass(frozen=True)
class Change:
    """One piece that changed, was added or was removed, and the words that did."""

    label: str
    action: Action
    removed: tuple[str, ...] = ()
    added: tuple[str, ...] = ()

    @property
    def words(self) -> int:
        return max(len(self.removed), len(self.added))

    @property
    def line(self) -> str:
        """``4th paragraph: removed “Smith’s”; added “Smyth’s”``."""
        parts = []
        if self.removed:
            parts.append(f"removed “{' '.join(self.removed)}”")
        if self.added:
            parts.append(f"added “{' '.join(self.added)}”")
        return f"{self.label} ({self.action}): " + "; ".join(parts)


@dataclass(frozen=True)
class Difference:
    changes: tuple[Change, ...]

    @property
    def words(self) -> int:
        """Words changed: for each edit, the larger of the words removed and added."""
        return sum(c.words for c in self.changes)

    @property
    def summary(self) -> str:
        """``changes the headline and the 4th paragraph; removes the 7th paragraph``."""
        clauses = []
        for action, verb in (("changed", "changes"), ("added", "adds"), ("removed", "removes")):
            labels = [c.label for c in self.changes if c.action == action]
            if labels:
                clauses.append(f"{verb} {_and(labels, 'a' if action == 'added' else 'the')}")
        return "; ".join(clauses)

    @property
    def lines(self) -> list[str]:
        return [c.line for c in self.changes]


def ordinal(number: int) -> str:
    suffix = (
        "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    )
    return f"{number}{suffix}"


def _and(labels: list[str], article: str = "the") -> str:
    named = [f"{article} {label}" for label in labels]
    return named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]


def pieces(post: Post) -> list[Piece]:
    """The headline and the body's paragraphs, subheads and captions, numbered as in the draft."""
    body = sanitize(post.content_html if post.has_full_text else post.summary_html, post.link)
    blocks = html_to_blocks(body, links=False)
    photos = sum(1 for b in blocks if b.kind == "photo")
    found = [Piece("headline", post.title)]
    counts = {"paragraph": 0, "subhead": 0, "photo caption": 0}
    for block in blocks:
        if block.kind == "break":
            continue
        if block.kind == "photo":
            name, text = "photo caption", " ".join(filter(None, (block.caption, block.credit)))
        elif block.kind == "subhead":
            name, text = "subhead", block.text
        elif block.kind in COUNTED_KINDS:
            name, text = "paragraph", block.text
        else:
            continue
        counts[name] += 1
        single = name == "photo caption" and photos == 1
        found.append(Piece(name if single else f"{ordinal(counts[name])} {name}", text))
    return found


def _word_change(label: str, old: str, new: str) -> Change:
    old_words, new_words = spaced(old).split(), spaced(new).split()
    matcher = SequenceMatcher(
        None, [normal(w) for w in old_words], [normal(w) for w in new_words], autojunk=False
    )
    removed: list[str] = []
    added: list[str] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            removed += old_words[i1:i2]
            added += new_words[j1:j2]
    return Change(label, "changed", tuple(removed), tuple(added))


def compare(old: Post, new: Post) -> Difference:
    """Every piece of `old` that `new` changed, added or removed (possibly none)."""
    before, after = pieces(old), pieces(new)
    if _words(before) == _words(after):
        return Difference(())  # only markup, whitespace, typography or paragraph breaks moved
    matcher = SequenceMatcher(None, [p.key for p in before], [p.key for p in after], autojunk=False)
    changes: list[Change] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        paired = min(i2 - i1, j2 - j1)
        for k in range(paired):
            changes.append(
                _word_change(before[i1 + k].label, before[i1 + k].text, after[j1 + k].text)
            )
        for piece in before[i1 + paired : i2]:
            changes.append(
                Change(piece.label, "removed", removed=tuple(spaced(piece.text).split()))
            )
        for piece in after[j1 + paired : j2]:
            anchor = before[i1 + paired - 1]  # the headline always comes first
            label = f"{piece.label.split(' ', 1)[-1]} after the {anchor.label}"
            changes.append(Change(label, "added", added=tuple(spaced(piece.text).split())))
    return Difference(tuple(c for c in changes if c.removed or c.added or c.action != "changed"))


def _words(found: list[Piece]) -> list[str]:
    return [word for piece in found for word in piece.key.split()]


def detect(old: Post, new: Post, min_words: int = 1) -> Difference | None:
    """The difference worth telling editors about, or None (`min_words`: see module docstring)."""
    difference = compare(old, new)
    if not difference.changes or difference.words < min_words:
        return None
    return difference
