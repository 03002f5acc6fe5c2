"""Text from outside (a stranger's reply, the feed, a subscriber's name) on the author's terminal:
shown as itself, never read as rich markup, and never able to drive the terminal.

Rich strips only BEL, BS, VT, FF and CR from a `Text` (rich.control.strip_control_codes), so
ESC sequences (colours, window titles, OSC 8 hyperlinks) and C1 controls would reach the
terminal; and a plain string in a table cell or `console.print` is parsed as markup, where a
stranger's "[/]" ends the command in a MarkupError and "[link=…]" makes a link of their choosing.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.text import Text

# C0 controls but tab and newline (ESC, CR and BS included), DEL, C1 (8-bit CSI/OSC); the
# bidirectional overrides, isolates and marks (LRM, RLM, ALM) that make a line read differently
# from what it holds; and the Unicode line and paragraph separators, which split a line where
# the author's terminal or a script's parser may or may not.
_UNSAFE = "\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_DRIVES_THE_TERMINAL = re.compile(f"[\x00-\x08\x0b-\x1f{_UNSAFE}]")
# What JSON leaves as itself (it escapes C0 controls but not these): escaped, not dropped.
JSON_UNSAFE = re.compile(f"[{_UNSAFE}]")


def plain(value: object) -> str:
    """`value` as text without the characters that would drive a terminal."""
    return _DRIVES_THE_TERMINAL.sub("", "" if value is None else str(value))


def text(value: object, style: str = "") -> Text:
    """`value` for rich: plain, and taken literally (no markup, no highlighting)."""
    from rich.text import Text

    return Text(plain(value), style=style)


def escaped(value: object) -> str:
    """`value` to splice into a rich markup string: plain, its brackets escaped."""
    from rich.markup import escape

    return escape(plain(value))
