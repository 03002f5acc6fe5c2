"""The inbound pipeline, in order: parse → identify → bounce → autoreply → unsubscribe → text →
file → forward. Every entrance (stdin, IMAP, Maildir, SendGrid) calls `process`; `classify` runs
the read-only steps and changes nothing.

Every message ends in exactly one recorded state. A database problem raises (the entrance then
asks for the message again later: exit 75, IMAP left unflagged, HTTP 5xx); a failed forward
leaves the reply `forward_pending`, retried by `retry_forwards`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from syndicate import db
from syndicate.db import Connection, DatabaseError, Engine
from syndicate.db.replies import Reply
from syndicate.inbound import autoreply, bounce, forward, identify, parse, spam, text, unsubscribe
from syndicate.inbound import file as filing
from syndicate.models import (
    Classification,
    DeliveryState,
    Identity,
    InboundMessage,
    Post,
    Recipient,
    RecipientStatus,
    ReplyKind,
    ReplyState,
)
from syndicate.settings import Settings

log = logging.getLogger(__name__)
# flufl.bounce logs every detector it tries at INFO.
logging.getLogger("flufl.bounce").setLevel(logging.WARNING)

HUMAN_KINDS = (ReplyKind.COMMENT, ReplyKind.EDITOR_RESPONSE, ReplyKind.UNMATCHED)


@dataclass(frozen=True)
class Outcome:
    reply_id: int
    kind: ReplyKind
    state: ReplyState
    duplicate: bool = False
    detail: str = ""
    # Refused for its size (only headers kept) and written by one of our recipients from their
    # own address: they are told at their address on record. (The MTA is never asked to bounce
    # it: its bounce goes to the envelope sender, which anyone can forge: backscatter.)
    too_large: bool = False


def classify(
    conn: Connection, inbound: InboundMessage, settings: Settings, key: bytes
) -> Classification:
    """Steps 2–7 without side effects: what this message is, about which post and person."""
    if inbound.malformed:
        return Classification(
            ReplyKind.MALFORMED,
            identify.UNMATCHED,
            None,
            None,
            "",
            reason=f"{inbound.malformed}; kept whole, not processed",
        )
    installation = db.meta.known_installation_id(conn)
    identity = identify.identify(inbound, key, installation)
    found = filing.target(conn, identity.send_id, identity.recipient_id, inbound.sender)
    post_id = found["send"]["post_id"] if found else None
    recipient_id = found["recipient"].id if found else None

    def result(kind: ReplyKind, words: str = "", reason: str = "", **extra) -> Classification:
        return Classification(kind, identity, post_id, recipient_id, words, reason=reason, **extra)

    failed = bounce.detect(inbound)
    if failed is not None:
        return _classify_bounce(conn, inbound, failed, key, installation)
    automatic = autoreply.reason(inbound)
    if automatic:
        return result(ReplyKind.AUTO_REPLY, reason=automatic)
    words = text.own_words(inbound.message)
    by_purpose = filing.PURPOSE_KINDS.get(identity.purpose)
    if by_purpose is ReplyKind.APPROVAL:
        return result(ReplyKind.APPROVAL, words, f"approval token via {identity.via}")
    if found and identity.recipient_id == identify.SHARED_RECIPIENT:
        return _classify_shared(inbound, identity, found, words, settings)
    if found and by_purpose is ReplyKind.UNSUBSCRIBE:
        # The token of the List-Unsubscribe mailto: the same secret as the one-click link,
        # which works from anywhere; the confirmation goes to the address on record.
        return result(ReplyKind.UNSUBSCRIBE, words, f"asked to unsubscribe ({identity.via})")
    if found and not _sent_by(inbound, found["recipient"].email):
        # A token or Message-ID names a recipient, but From is not their address: the message
        # may be about the post, but it cannot speak (comment, unsubscribe) for them.
        written_by = inbound.sender or "an unknown sender"
        if identity.via == "message-id":
            return Classification(
                ReplyKind.UNMATCHED,
                identity,
                post_id,
                None,
                words,
                reason=(
                    f"In-Reply-To names recipient {recipient_id}, but the message came from "
                    f"{written_by}, not their address"
                ),
            )
        verdict = spam.check(inbound.raw, settings.inbound)
        if verdict is not None and verdict.spam:
            return result(ReplyKind.SPAM, words, verdict.detail)
        kind = filing.CHANNEL_KINDS.get(found["send"]["channel"], ReplyKind.COMMENT)
        return Classification(
            kind,
            identity,
            post_id,
            None,
            words,
            reason=(
                f"{identity.via} of recipient {recipient_id}, but written by {written_by}, "
                "not their address: filed for the post, not as theirs"
            ),
        )
    if found and unsubscribe.is_request(words, inbound.subject):
        return result(ReplyKind.UNSUBSCRIBE, words, f"asked to unsubscribe ({identity.via})")
    verdict = spam.check(inbound.raw, settings.inbound)
    if verdict is not None and verdict.spam:
        return result(ReplyKind.SPAM, words, verdict.detail)
    if not found:
        return Classification(
            ReplyKind.UNMATCHED, identity, None, None, words, reason=_unmatched_reason(identity)
        )
    kind = filing.CHANNEL_KINDS.get(found["send"]["channel"], ReplyKind.COMMENT)
    return result(kind, words, f"matched by {identity.via}")


def _classify_shared(
    inbound: InboundMessage,
    identity: Identity,
    found: dict,
    words: str,
    settings: Settings,
) -> Classification:
    """A send-wide reply address (SendGrid's one Reply-To per request) names the send, not the
    person: every reader of the send holds the same token, so From alone says who wrote, and a
    From line proves nothing. The message is filed for the post, never as the reader's, and
    never acts for them (an "unsubscribe" is not obeyed: their own unsubscribe link is)."""
    post_id = found["send"]["post_id"]
    verdict = spam.check(inbound.raw, settings.inbound)
    if verdict is not None and verdict.spam:
        return Classification(ReplyKind.SPAM, identity, post_id, None, words, reason=verdict.detail)
    asked = unsubscribe.is_request(words, inbound.subject)
    reason = (
        f"claimed by From {inbound.sender} (recipient {found['recipient'].id}, unverified): "
        f"the shared reply address of send {identity.send_id} names no one; "
        "filed for the post, not as theirs"
        + ("; asks to unsubscribe, not acted on" if asked else "")
    )
    kind = filing.CHANNEL_KINDS.get(found["send"]["channel"], ReplyKind.COMMENT)
    return Classification(kind, identity, post_id, None, words, reason=reason)


def _classify_bounce(
    conn: Connection,
    inbound: InboundMessage,
    failed: bounce.Bounce,
    key: bytes,
    installation: str,
) -> Classification:
    """A bounce counts only for the delivery it proves it is about; any other is unverified."""
    ours = bounce.delivery(conn, inbound, key, installation)
    if ours is None:
        return Classification(
            ReplyKind.BOUNCE,
            identify.UNMATCHED,
            None,
            None,
            "",
            addresses=failed.addresses,
            temporary=failed.only_temporary,
            reason=(
                "unverified bounce: not addressed to one of our bounce addresses and returns "
                "none of our Message-IDs; recorded, not scored"
            ),
            verified=False,
        )
    counted = bounce.for_delivery(failed, ours.address)
    send = db.sends.get_send(conn, ours.send_id)
    return Classification(
        ReplyKind.BOUNCE,
        Identity("bounce", ours.send_id, ours.recipient_id, ours.via),
        send.post_id if send else None,
        ours.recipient_id,
        "",
        addresses=counted.addresses,
        temporary=counted.only_temporary,
        reason=f"delivery status notification for send {ours.send_id} ({ours.via})",
        verified=True,
    )


def _sent_by(inbound: InboundMessage, address: str) -> bool:
    return bool(inbound.sender) and inbound.sender.strip().lower() == address.strip().lower()


def _classify_or_refuse(
    conn: Connection, inbound: InboundMessage, settings: Settings, key: bytes
) -> Classification:
    """A message the pipeline cannot read is recorded whole as refused, never retried forever;
    database errors still propagate (they are transient)."""
    try:
        return classify(conn, inbound, settings, key)
    except DatabaseError:
        raise
    except Exception as exc:
        log.exception("could not classify %s; recorded as refused", inbound.message_id)
        return Classification(
            ReplyKind.REFUSED,
            Identity(""),
            None,
            None,
            "",
            reason=f"could not be processed ({type(exc).__name__}: {exc}); kept whole",
        )


def _unmatched_reason(identity: Identity) -> str:
    if identity.send_id is not None:
        return (
            f"names send {identity.send_id} / recipient {identity.recipient_id}, "
            "which are not in this database"
        )
    if identity.rejected_tokens:
        return "reply token did not verify (altered or forged): " + ", ".join(
            identity.rejected_tokens
        )
    return "no reply token and no In-Reply-To/References to one of our messages"


def process(
    engine: Engine,
    raw: bytes,
    settings: Settings,
    key: bytes,
    *,
    source: str,
    envelope_recipients: tuple[str, ...] = (),
    at: datetime | None = None,
) -> Outcome:
    """Run one message through the whole pipeline and record it; safe to call twice."""
    at = at or db.now()
    limit = settings.inbound.max_message_bytes
    if len(raw) > limit:
        return _refuse(engine, raw, source, envelope_recipients, settings, key)
    inbound = parse.parse(raw, source=source, envelope_recipients=envelope_recipients)
    try:
        with engine.begin() as conn:
            seen = db.replies.reply_seen(conn, filing.seen_keys(inbound))
            if seen is not None:
                row = db.replies.get_reply(conn, seen)
                assert row is not None
                log.info("message %s already recorded as reply %s", inbound.message_id, seen)
                state = ReplyState(row.state)
                return Outcome(seen, ReplyKind(row.kind), state, duplicate=True)
            result = _classify_or_refuse(conn, inbound, settings, key)
            reply_id = filing.record(conn, inbound, result)
            detail = _act(conn, result, reply_id, settings, at)
    except DatabaseError:
        raise
    except Exception as exc:  # not the database's fault: retrying would fail the same way
        log.exception("could not record %s; recorded as refused", inbound.message_id)
        return _record_unprocessable(engine, inbound, exc)
    log.info(
        "%s from %s → reply %s: %s (%s)",
        source,
        inbound.sender or "unknown sender",
        reply_id,
        result.kind.value,
        result.reason,
    )
    if result.kind is ReplyKind.APPROVAL:
        detail = _approve(engine, reply_id, inbound, settings)
    state = _notify(engine, reply_id, result, settings, at)
    return Outcome(reply_id, result.kind, state, detail=detail)


def _record_unprocessable(engine: Engine, inbound: InboundMessage, error: Exception) -> Outcome:
    """Record whole, as refused, a message whose filing failed for a reason of its own."""
    reason = f"could not be recorded ({type(error).__name__}); kept whole, not processed"
    bare = parse.parse(b"", source=inbound.source)
    kept = replace(
        bare, raw=inbound.raw, message_id=parse.clean(inbound.message_id)[:998], malformed=reason
    )
    result = Classification(ReplyKind.REFUSED, identify.UNMATCHED, None, None, "", reason=reason)
    with engine.begin() as conn:
        reply_id = filing.record(conn, kept, result)
    return Outcome(reply_id, ReplyKind.REFUSED, ReplyState.REFUSED, detail=reason)


def _approve(engine: Engine, reply_id: int, inbound: InboundMessage, settings: Settings) -> str:
    """The author's "approve" to a preview: approval.py decides (author only, says approve).

    Runs after the reply is committed, since approving opens its own transaction.
    """
    # Imported here: approval loads the renderers (premailer, python-docx), which every other
    # reply an MTA pipes in (`syndicate inbound receive`, one process each) never needs.
    from syndicate.scheduling import approval

    outcome = approval.handle_approval_reply(engine, settings, inbound.message, raw=inbound.raw)
    detail = ("approved: " if outcome.accepted else "not approved: ") + outcome.reason
    with engine.begin() as conn:
        db.replies.update_reply(conn, reply_id, detail=detail)
    return detail


Action = Callable[[Connection, Classification, int, Settings, datetime], str]


def _act_on_bounce(
    conn: Connection, result: Classification, reply_id: int, settings: Settings, at: datetime
) -> str:
    if not result.verified:
        return ""
    suppressed = bounce.record(conn, bounce.Bounce(*_split(result)), reply_id, settings.inbound, at)
    return f"suppressed: {', '.join(suppressed)}" if suppressed else ""


def _act_on_unsubscribe(
    conn: Connection, result: Classification, reply_id: int, settings: Settings, at: datetime
) -> str:
    if result.recipient_id is None:
        return ""
    reason = f"asked by email (reply {reply_id})"
    if not db.recipients.mark_recipient(
        conn, result.recipient_id, RecipientStatus.UNSUBSCRIBED, reason, at
    ):
        return "already not subscribed"
    return "unsubscribed"


# What each kind does, in the same transaction as its record. (An approval is acted on after
# the record is committed: see _approve.)
ACTIONS: dict[ReplyKind, Action] = {
    ReplyKind.BOUNCE: _act_on_bounce,
    ReplyKind.UNSUBSCRIBE: _act_on_unsubscribe,
}


def _act(
    conn: Connection, result: Classification, reply_id: int, settings: Settings, at: datetime
) -> str:
    action = ACTIONS.get(result.kind)
    if action is None:
        return ""
    detail = action(conn, result, reply_id, settings, at)
    if detail:
        db.replies.update_reply(conn, reply_id, detail=detail)
    return detail


def _split(result: Classification) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if result.temporary:
        return (), result.addresses
    return result.addresses, ()


def _notify(
    engine: Engine, reply_id: int, result: Classification, settings: Settings, at: datetime
) -> ReplyState:
    """Forward a comment or an editor's answer; confirm an unsubscribe. Never raises."""
    with engine.connect() as conn:
        row = db.replies.get_reply(conn, reply_id)
    assert row is not None
    if result.kind in (ReplyKind.COMMENT, ReplyKind.EDITOR_RESPONSE):
        if not settings.inbound.forward_to_author:
            return ReplyState.FILED
        return forward_reply(engine, row, settings, at)
    if result.kind is ReplyKind.UNSUBSCRIBE and settings.inbound.confirm_unsubscribe:
        _confirm_unsubscribe(engine, row, settings, at)
    return ReplyState(row.state)


def forward_reply(engine: Engine, row: Reply, settings: Settings, at: datetime) -> ReplyState:
    """Forward one filed reply to the author and record the result."""
    with engine.connect() as conn:
        post = db.posts.get_post(conn, row.post_id) if row.post_id else None
        recipient = (
            db.recipients.get_recipient(conn, row.recipient_id) if row.recipient_id else None
        )
    assert post is not None
    try:
        message = forward.forward_message(settings, row, post, recipient, at)
        result = forward.deliver(
            settings, message, settings.author.email, settings.author.name, row.id
        )
        ok, detail = result.state is DeliveryState.SENT, result.detail
    except Exception as exc:  # a template error or an unreachable server: keep it pending
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    state = ReplyState.FORWARDED if ok else ReplyState.FORWARD_PENDING
    with engine.begin() as conn:
        db.replies.update_reply(
            conn,
            row.id,
            state=state.value,
            forwarded_at=at if ok else None,
            detail=("forwarded to " + settings.author.email) if ok else f"forward failed: {detail}",
        )
    if not ok:
        log.warning("could not forward reply %s to the author: %s (will retry)", row.id, detail)
    return state


def retry_forwards(engine: Engine, settings: Settings) -> tuple[int, int]:
    """Forward again every reply left forward_pending; returns (forwarded, still pending)."""
    with engine.connect() as conn:
        pending = db.replies.list_replies(conn, states=[ReplyState.FORWARD_PENDING.value])
    done = 0
    for row in pending:
        with engine.connect() as conn:
            full = db.replies.get_reply(conn, row.id)
        if full and forward_reply(engine, full, settings, db.now()) is ReplyState.FORWARDED:
            done += 1
    return done, len(pending) - done


def _confirm_unsubscribe(engine: Engine, row: Reply, settings: Settings, at: datetime) -> None:
    if row.recipient_id is None:
        return
    with engine.connect() as conn:
        recipient = db.recipients.get_recipient(conn, row.recipient_id)
    if recipient is None:
        return
    try:
        message = forward.unsubscribe_confirmation(settings, recipient, row, at)
        result = forward.deliver(settings, message, recipient.email, recipient.name, row.id)
        detail = f"unsubscribed; confirmation {result.state.value}"
    except Exception as exc:  # the unsubscribe itself is recorded; the notice is a courtesy
        detail = f"unsubscribed; confirmation failed: {exc}"
    with engine.begin() as conn:
        db.replies.update_reply(conn, row.id, detail=detail)


def _refuse(
    engine: Engine,
    raw: bytes,
    source: str,
    envelope_recipients: tuple[str, ...],
    settings: Settings,
    key: bytes,
) -> Outcome:
    """Record a message too large to process: its headers and size, not its body. A known
    reader or editor writing from their own address is told why, at their address on record
    (never by the MTA's bounce, which would go to the envelope sender: anyone's choice)."""
    limit = settings.inbound.max_message_bytes
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0][:65536]
    inbound = parse.parse(head + b"\n\n", source=source, envelope_recipients=envelope_recipients)
    reason = (
        f"message of {len(raw):,} bytes is larger than inbound.max_message_bytes ({limit:,}); "
        "only its headers were kept"
    )
    with engine.begin() as conn:
        identity = identify.identify(inbound, key, db.meta.known_installation_id(conn))
        keys = filing.seen_keys(inbound)
        seen = db.replies.reply_seen(conn, keys[:1] if inbound.message_id else keys)
        if seen is not None:
            row = db.replies.get_reply(conn, seen)
            known = bool(row and row.recipient_id)
            return Outcome(seen, ReplyKind.REFUSED, ReplyState.REFUSED, True, reason, known)
        found = filing.target(conn, identity.send_id, identity.recipient_id, inbound.sender)
        if found and (
            identity.recipient_id == identify.SHARED_RECIPIENT
            or not _sent_by(inbound, found["recipient"].email)
        ):
            # A stranger holding someone's token is told nothing, nor is the victim; a shared
            # token names no one, so whoever From names is not told either.
            found = {}
        post_id = found["send"]["post_id"] if found else None
        recipient_id = found["recipient"].id if found else None
        result = Classification(
            ReplyKind.REFUSED, identity, post_id, recipient_id, "", reason=reason
        )
        reply_id = filing.record(conn, inbound, result)
        db.replies.update_reply(conn, reply_id, size=len(raw))
        post = db.posts.get_post(conn, post_id) if post_id else None
    log.warning("%s: refused a message from %s: %s", source, inbound.sender or "unknown", reason)
    if found:
        _tell_sender_refused(
            engine, reply_id, inbound, found["recipient"], post, len(raw), settings
        )
    return Outcome(
        reply_id, ReplyKind.REFUSED, ReplyState.REFUSED, detail=reason, too_large=bool(found)
    )


def _tell_sender_refused(
    engine: Engine,
    reply_id: int,
    inbound: InboundMessage,
    recipient: Recipient,
    post: Post | None,
    size: int,
    settings: Settings,
) -> None:
    """Only ever to the address on record for the token's recipient (never a From we have
    not matched to one), so no one can make us mail a third party."""
    try:
        message = forward.refusal_notice(
            settings, inbound, recipient, post.title if post else "", size, db.now()
        )
        result = forward.deliver(settings, message, recipient.email, recipient.name, reply_id)
        detail = f"sender told: {result.state.value}"
    except Exception as exc:  # the refusal is recorded; the notice is a courtesy
        detail = f"could not tell the sender: {exc}"
    with engine.begin() as conn:
        db.replies.update_reply(conn, reply_id, detail=detail)
