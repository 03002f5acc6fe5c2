"""What a correction is, as the rest of syndicate sees it: its action, its state, its row."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from syndicate.models import Post, Recipient


class CorrectionAction(enum.StrEnum):
    CORRECT = "correct"  # an edited post: UPDATED or CORRECTION, decided when it is sent
    KILL = "kill"


class CorrectionState(enum.StrEnum):
    PENDING = "pending"  # waiting for the author ("ask")
    APPROVED = "approved"  # to be sent by the next tick (a reply "send", or "auto")
    SENDING = "sending"  # claimed by one process while it sends
    SENT = "sent"
    DROPPED = "dropped"  # the author said no
    REVERTED = "reverted"  # the post went back to what editors have before anything was sent
    IGNORED = "ignored"  # an edit below the threshold, kept only as what editors have (base)


# The author's question carries an `approve` token whose recipient slot is this plus the
# correction's id: far above any recipient id, so the reply is never filed as a recipient's,
# and unlike an approval preview's 0, so approval knows a correction is meant.
QUESTION_SLOT = 1_000_000_000


def correction_of(recipient_slot: int) -> int | None:
    """The correction an approve token's recipient slot names, if it names one."""
    return recipient_slot - QUESTION_SLOT if recipient_slot > QUESTION_SLOT else None


OPEN = (CorrectionState.PENDING.value, CorrectionState.APPROVED.value)


@dataclass(frozen=True)
class Correction:
    id: int
    post_id: int
    send_id: int
    action: CorrectionAction
    state: CorrectionState
    origin: str
    created_at: datetime
    base: Post
    new: Post
    summary: str
    details: tuple[str, ...]
    note: str
    reason: str
    asked_at: datetime | None
    approved_at: datetime | None
    approved_by: str
    sent_at: datetime | None
    advisory: str
    version: int
    title: str = ""  # the post's current title

    @property
    def open(self) -> bool:
        return self.state.value in OPEN


@dataclass(frozen=True)
class Reached:
    """An editor who received the original column, and the Message-IDs they got about it."""

    recipient: Recipient
    message_ids: tuple[str, ...]  # the original first, then each advisory since
