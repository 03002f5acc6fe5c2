"""Header values built from text that came from outside (feed titles, form and CSV names)."""

from __future__ import annotations

import re

# Every Unicode control character (category Cc: C0, DEL and C1), CR and LF included.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def one_line(text: str) -> str:
    """Fit for a header and a heading: control characters become spaces, runs of whitespace
    (line and paragraph separators included) one space, no space at either end."""
    return " ".join(_CONTROL_CHARACTERS.sub(" ", text).split())
