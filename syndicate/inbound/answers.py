"""The author's one-word answers by email ("approve", "send", "drop"): what the first line of a
reply must say to count.

The whole first line must be the answer: alone, closed by a full stop or exclamation mark, or
followed by "please" or "thanks". A line that only begins with the word is not an answer:
"approved? not yet", "sending is a bad idea", "send after the lawyer reads it" and
"approve — no, wait" change nothing, and the author is told what was read.
"""

from __future__ import annotations

import re

# Phones and mail programs type a curly apostrophe ("don’t send").
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
_CLOSING = re.compile(r"(?:[\s,]+(?:please|thanks|thank you))?[\s.!]*$")


def first_line(words: str) -> str:
    """The answer's own first line, lower-case, quoted lines and blank lines skipped."""
    for line in words.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(">"):
            return " ".join(stripped.lower().translate(_APOSTROPHES).split())
    return ""


def is_answer(said: str, answers: tuple[str, ...]) -> bool:
    """Whether `said` (a `first_line`) is one of `answers` and says nothing else."""
    return _CLOSING.sub("", said, count=1) in answers
