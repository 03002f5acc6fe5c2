"""The inbound pipeline: every message, whatever its entrance, runs these steps in this order.

Each name is a module in syndicate/inbound/steps/ with one `process(message)` over a
`MessageContext` (context.py):

    parse        bytes → the parsed message (only the headers when it is too large)
    seen         already recorded? then it ends here, with the outcome it had
    identify     which send and recipient it names (signed token, then signed Message-ID)
    verify       whether its writer is that recipient; too large → refused; unreadable → malformed
    bounce       a delivery status notification, scored only when tied to our delivery
    autoreply    out-of-office and other machine answers
    text         the writer's own words (quotes and signatures cut; the one HTML-to-text)
    approve      the author's "approve" to a preview (acted on once recorded)
    unsubscribe  "unsubscribe"/"stop" from the recipient, or the List-Unsubscribe mailto: token
    spam         SpamAssassin, when configured
    comment      whatever is left: a comment, an editor's answer, or unmatched
    file         record it and act (score, unsubscribe) in one transaction
    forward      after the commit: the author's copy, the approval, notices to the writer

`identify` … `comment` only read and decide; the first of them to classify the message ends the
deciding, and `classify` runs just them (`classify_bytes`, for `syndicate inbound classify`,
parses first as `process` does); neither changes anything.

Every message ends in exactly one recorded state. A database problem raises (the entrance then
asks for the message again later: exit 75, IMAP left unflagged, HTTP 5xx); any other failure
records the message whole as refused; a failed forward leaves the reply `forward_pending`,
retried by `retry_forwards`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from types import ModuleType
from typing import TYPE_CHECKING

from syndicate import db
from syndicate.db import Connection, DatabaseError, Engine
from syndicate.inbound.context import UNMATCHED, MessageContext, Outcome
from syndicate.inbound.steps import file as filing
from syndicate.inbound.steps import forward, parse
from syndicate.models import Classification, Identity, InboundMessage, ReplyKind, ReplyState

if TYPE_CHECKING:
    from syndicate.runtime import Runtime

__all__ = [
    "CLASSIFY",
    "PIPELINE",
    "classify",
    "classify_bytes",
    "process",
    "retry_forwards",
    "step",
]

log = logging.getLogger(__name__)
# flufl.bounce logs every detector it tries at INFO.
logging.getLogger("flufl.bounce").setLevel(logging.WARNING)

PIPELINE = (
    "parse",
    "seen",
    "identify",
    "verify",
    "bounce",
    "autoreply",
    "text",
    "approve",
    "unsubscribe",
    "spam",
    "comment",
    "file",
    "forward",
)
# Its four stretches: reading, deciding (read-only), recording (one transaction, from reading
# on), and what waits for the commit.
READ = PIPELINE[: PIPELINE.index("identify")]
CLASSIFY = PIPELINE[len(READ) : PIPELINE.index("file")]
RECORD = PIPELINE[len(READ) + len(CLASSIFY) : PIPELINE.index("forward")]
AFTER_COMMIT = PIPELINE[len(READ) + len(CLASSIFY) + len(RECORD) :]


def step(name: str) -> ModuleType:
    """The module of one step (imported once, by name: PIPELINE is the one list of them)."""
    return importlib.import_module(f"syndicate.inbound.steps.{name}")


def _run(message: MessageContext, names: Sequence[str]) -> None:
    for name in names:
        if message.outcome is not None:
            return
        if name in CLASSIFY and message.classification is not None:
            continue
        step(name).process(message)


def classify(conn: Connection, inbound: InboundMessage, runtime: Runtime) -> Classification:
    """What a parsed message is, about which post and person; changes nothing."""
    message = MessageContext(
        raw=inbound.raw, source=inbound.source, runtime=runtime, at=runtime.now()
    )
    message.parsed, message.conn = inbound, conn
    _decide(message)
    return message.decided


def classify_bytes(
    conn: Connection, raw: bytes, runtime: Runtime, *, source: str = "classify"
) -> tuple[InboundMessage, Classification]:
    """What these bytes would be filed as, read as `process` reads them (only the headers of a
    message over the size limit); changes nothing."""
    message = MessageContext(raw=raw, source=source, runtime=runtime, at=runtime.now())
    message.conn = conn
    parse.process(message)
    _decide(message)
    return message.inbound, message.decided


def _decide(message: MessageContext) -> None:
    """The deciding steps. A message they cannot read is recorded whole as refused, never
    retried forever; database errors still propagate (they are transient)."""
    try:
        _run(message, CLASSIFY)
    except DatabaseError:
        raise
    except Exception as exc:
        log.exception("could not classify %s; recorded as refused", message.inbound.message_id)
        message.actions.clear()
        message.afterwards.clear()
        message.classification = Classification(
            ReplyKind.REFUSED,
            Identity(""),
            None,
            None,
            "",
            reason=f"could not be processed ({type(exc).__name__}: {exc}); kept whole",
        )


def process(
    runtime: Runtime,
    raw: bytes,
    *,
    source: str,
    envelope_recipients: tuple[str, ...] = (),
    at: datetime | None = None,
    size: int = 0,
) -> Outcome:
    """Run one message through the whole pipeline and record it; safe to call twice.

    `at` is when it arrived (the runtime's clock unless the entrance knows better); `size`, how
    many bytes it had when the entrance read only the first max_message_bytes + 1 of them."""
    engine = runtime.engine
    message = MessageContext(
        raw=raw,
        source=source,
        runtime=runtime,
        at=at or runtime.now(),
        envelope_recipients=envelope_recipients,
        engine=engine,
        size=size,
    )
    try:
        with engine.begin() as conn:
            message.conn = conn
            _run(message, READ)
            if message.outcome is not None:
                return message.outcome
            _decide(message)
            _run(message, RECORD)
    except DatabaseError:
        raise
    except Exception as exc:  # not the database's fault: retrying would fail the same way
        if message.parsed is None:
            raise
        log.exception("could not record %s; recorded as refused", message.inbound.message_id)
        return _record_unprocessable(engine, message.inbound, exc)
    finally:
        message.conn = None
    _run(message, AFTER_COMMIT)
    return Outcome(
        message.reply_id,
        message.decided.kind,
        message.state,
        detail=message.too_large or message.detail,
        too_large=bool(message.too_large) and message.decided.recipient_id is not None,
    )


def _record_unprocessable(engine: Engine, inbound: InboundMessage, error: Exception) -> Outcome:
    """Record whole, as refused, a message whose filing failed for a reason of its own."""
    reason = f"could not be recorded ({type(error).__name__}); kept whole, not processed"
    bare = parse.parse(b"", source=inbound.source)
    kept = replace(
        bare, raw=inbound.raw, message_id=parse.clean(inbound.message_id)[:998], malformed=reason
    )
    result = Classification(ReplyKind.REFUSED, UNMATCHED, None, None, "", reason=reason)
    with engine.begin() as conn:
        reply_id = filing.record(conn, kept, result)
    return Outcome(reply_id, ReplyKind.REFUSED, ReplyState.REFUSED, detail=reason)


def retry_forwards(runtime: Runtime) -> tuple[int, int]:
    """Forward again every reply left forward_pending; returns (forwarded, still pending)."""
    engine = runtime.engine
    with engine.connect() as conn:
        pending = db.replies.list_replies(conn, states=[ReplyState.FORWARD_PENDING.value])
    done = 0
    for row in pending:
        with engine.connect() as conn:
            full = db.replies.get_reply(conn, row.id)
        if full and forward.forward_reply(runtime, full, runtime.now()) is ReplyState.FORWARDED:
            done += 1
    return done, len(pending) - done
