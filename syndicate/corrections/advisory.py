"""The advisory editors get: UPDATED (a substitute before release), CORRECTION (after) or KILL.

An advisory is the column draft in its own conventions (see `render.column`): the same slug with a
version mark (``WALLS-WORDS/CORRECTION v2``), an ``Eds:`` line that says what it is, the same
attachments in the editor's formats (NITF carries the version in ``du-key``, the advisory in
``ed-msg`` and ``correction``, and ``management-status="canceled"`` with urgency 1 for a kill).
It is rendered once per editor profile, like the column; threading under the message each editor
received is added per recipient when it is sent (`threading_headers`).
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from jinja2 import Environment

from syndicate.models import Edition, Post
from syndicate.render.column import ColumnDraft, build_draft, column_edition
from syndicate.render.column_text import _AP_MONTHS, Block, quote_style
from syndicate.render.editor_profile import EditorProfile
from syndicate.settings import Settings


class AdvisoryKind(enum.StrEnum):
    UPDATED = "updated"  # a substitute, sent before the release time
    CORRECTION = "correction"  # after the release time
    KILL = "kill"  # do not publish

    @property
    def label(self) -> str:
        return self.value.upper()


# Headers that mark a kill urgent in the clients editors use (Outlook, Thunderbird, Apple Mail).
URGENT_HEADERS = {"Importance": "high", "Priority": "urgent", "X-Priority": "1 (Highest)"}
WITHDRAWN = "This column has been withdrawn by the author. Do not publish it."


def kind_at(release_at: datetime | None, sent_at: datetime, now: datetime) -> AdvisoryKind:
    """UPDATED while the column is not yet released, CORRECTION once it is.

    A column released "upon receipt" was released when it was sent.
    """
    released = release_at if release_at is not None else sent_at
    return AdvisoryKind.UPDATED if now < released else AdvisoryKind.CORRECTION


@dataclass(frozen=True)
class Advisory:
    """What one advisory says, whoever receives it."""

    kind: AdvisoryKind
    version: int  # the original draft is version 1
    sent_at: datetime  # when editors got the original
    release_at: datetime | None  # the original's embargo (None: upon receipt)
    changes: str = ""  # "changes the 4th paragraph" (detect.Difference.summary)
    details: tuple[str, ...] = ()  # one line per changed piece (detect.Difference.lines)
    note: str = ""  # the author's note to editors
    reason: str = ""  # why a column is killed

    @property
    def mark(self) -> str:
        return "KILL" if self.kind is AdvisoryKind.KILL else f"{self.kind.label} v{self.version}"


def day_name(moment: datetime, now: datetime, profile: EditorProfile) -> str:
    """``Monday`` within the week around now, else ``Monday, Nov. 30``, in the editor's zone."""
    local = moment.astimezone(profile.zone)
    if abs(now - moment) < timedelta(days=6):
        return f"{local:%A}"
    return f"{local:%A}, {_AP_MONTHS.get(local.month, f'{local:%B}')} {local.day}"


def eds_sentences(advisory: Advisory, now: datetime, profile: EditorProfile) -> tuple[str, ...]:
    """The advisory's sentences at the head of the ``Eds:`` line."""
    note = _sentence(advisory.note)
    if advisory.kind is AdvisoryKind.KILL:
        reason = _sentence(advisory.reason)
        return ("withdrawn by the author; do not publish.",) + (
            (f"Reason: {reason}",) if reason else ()
        )
    changes = f"; {advisory.changes}" if advisory.changes else ""
    first: tuple[str, ...]
    if advisory.kind is AdvisoryKind.UPDATED:
        sent = day_name(advisory.sent_at, now, profile)
        first = (f"substitutes for the column sent {sent}{changes}.", "Release time unchanged.")
    else:
        released = day_name(advisory.release_at or advisory.sent_at, now, profile)
        first = (f"corrects the column released {released}{changes}.",)
    return first + ((f"Author's note: {note}",) if note else ())


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text + "." if text and text[-1] not in ".!?…" else text


def advisory_draft(draft: ColumnDraft, advisory: Advisory, now: datetime) -> ColumnDraft:
    """The column draft as this advisory: version mark, Eds sentences, and for a kill no body."""
    changed = dataclasses.replace(
        draft,
        advisory=tuple(
            quote_style(s, draft.profile.quotes)
            for s in eds_sentences(advisory, now, draft.profile)
        ),
        mark=advisory.mark,
        version=advisory.version,
        corrects=draft.file_stem.upper(),
    )
    if advisory.kind is not AdvisoryKind.KILL:
        return changed
    return dataclasses.replace(
        changed,
        release="KILL: DO NOT PUBLISH",
        blocks=(Block("paragraph", WITHDRAWN),),
        alternate_headlines=(),
        status="canceled",
        urgent=True,
    )


def render_advisory(
    advisory: Advisory,
    post: Post,
    settings: Settings,
    env: Environment,
    now: datetime,
    profile: EditorProfile | None = None,
) -> Edition:
    """One editor profile's advisory email: what it is and why, then the draft, attached.

    A substitute keeps the original's embargo; a correction or kill comes after it (or there
    was none), so its release line is the channel's usual one.
    """
    embargo = advisory.release_at if advisory.kind is AdvisoryKind.UPDATED else None
    draft = advisory_draft(build_draft(post, settings, embargo, profile), advisory, now)
    return column_edition(
        post,
        settings,
        env,
        draft,
        "column/advisory_note.txt.j2",
        "column/advisory.html.j2",
        subject_label=advisory.kind.label,
        advisory=advisory,
        label=advisory.kind.label,
        killed=advisory.kind is AdvisoryKind.KILL,
    )


def threading_headers(original_message_id: str, references: str = "") -> dict[str, str]:
    """In-Reply-To and References that put an advisory under the draft this editor received."""
    chain = " ".join([*references.split(), original_message_id]).strip()
    return {"In-Reply-To": original_message_id, "References": chain} if original_message_id else {}


def headers_for(advisory: Advisory) -> dict[str, str]:
    return dict(URGENT_HEADERS) if advisory.kind is AdvisoryKind.KILL else {}
