"""Per-recipient placeholders that survive Jinja2 and premailer untouched.

Templates are rendered once per edition with these strings standing in for the recipient's
details; compose.py replaces them for each recipient. They contain no spaces or braces because
premailer rewrites ``{{ x }}`` inside attributes.
"""

from __future__ import annotations

from dataclasses import dataclass

NAME = "%%NAME%%"
FIRST_NAME = "%%FIRST_NAME%%"
GREETING_NAME = "%%GREETING_NAME%%"
EMAIL = "%%EMAIL%%"
REPLY_ADDRESS = "%%REPLY_ADDRESS%%"
UNSUBSCRIBE_URL = "%%UNSUBSCRIBE_URL%%"
UNSUBSCRIBE_MAILTO = "%%UNSUBSCRIBE_MAILTO%%"

ALL = (NAME, FIRST_NAME, GREETING_NAME, EMAIL, REPLY_ADDRESS, UNSUBSCRIBE_URL, UNSUBSCRIBE_MAILTO)


@dataclass(frozen=True)
class RecipientPlaceholders:
    """What templates see as `recipient`: every attribute is a placeholder string."""

    name: str = NAME
    first_name: str = FIRST_NAME
    greeting_name: str = GREETING_NAME
    email: str = EMAIL
    reply_address: str = REPLY_ADDRESS
    unsubscribe_url: str = UNSUBSCRIBE_URL
    unsubscribe_mailto: str = UNSUBSCRIBE_MAILTO
