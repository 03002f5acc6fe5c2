"""Corrections and kills: found by the feed poll, decided by the author, sent to editors.

The feed poll calls `on_edit` for every known post before it refreshes the stored copy, and
`on_feed` with the feed's posts: an edit of a column editors already have becomes one open
correction (revised, never duplicated, by later polls), and a delivered column that vanished
from the feed becomes a proposed kill. `[channels.column] corrections` says what happens next:
"ask" (the default) emails the author, who answers `send` by reply (with the proof approvals
need) or runs `syndicate corrections send ID`; "auto" sends corrections at the next tick; "off"
detects nothing. A kill is never sent without the author. The daemon's tick calls `tick`.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from sqlalchemy.engine import Connection, Engine

from syndicate import store, tokens
from syndicate.corrections import records
from syndicate.corrections.advisory import (
    Advisory,
    AdvisoryKind,
    headers_for,
    kind_at,
    render_advisory,
    threading_headers,
)
from syndicate.corrections.detect import compare, detect
from syndicate.corrections.records import Correction, CorrectionAction, CorrectionState
from syndicate.errors import SyndicateError, TransportError
from syndicate.models import Channel, DeliveryState, Edition, OutboundMessage, Post, SendState
from syndicate.settings import Settings

log = logging.getLogger(__name__)

SEND_WORDS = ("send", "yes, send", "ok send", "approve")
DROP_WORDS = ("drop", "don't send", "do not send")
# A delivered column missing from the feed is a proposed kill only while it would still be in
# the feed's window (newer than the feed's oldest post): older posts simply scroll off the end.
KILL_WATCH_DAYS = 30


@dataclass(frozen=True)
class Outcome:
    """What a send of a correction did: the advisory kind and how many editors got it."""

    correction_id: int
    kind: str
    sent: int
    failed: int
    cancelled_sends: tuple[int, ...] = ()


# --- found by the feed poll -----------------------------------------------------------------


def on_edit(conn: Connection, settings: Settings, stored: Post, fresh: Post, at: datetime) -> None:
    """Compare a known post with the feed's version; open or revise a correction if it matters."""
    column = settings.channels.column
    if column.corrections == "off" or stored.id is None:
        return
    records.ensure_tables(conn)
    send = records.delivered_column(conn, stored.id)
    if send is None or records.killed(conn, stored.id):
        return
    fresh = _with_id(fresh, stored.id)
    open_one = records.open_for_post(conn, stored.id, CorrectionAction.CORRECT)
    last = records.last_sent(conn, stored.id)
    base = open_one.base if open_one else last.new if last else stored
    difference = detect(base, fresh, column.corrections_min_words)
    if open_one is not None:
        if difference is None:
            records.set_state(conn, open_one.id, CorrectionState.REVERTED, updated_at=at)
            log.info(
                "post %r is back to what editors have: correction %s closed",
                fresh.title,
                open_one.id,
            )
        elif compare(open_one.new, fresh).changes:
            records.revise(
                conn,
                open_one.id,
                new=fresh,
                summary=difference.summary,
                details=tuple(difference.lines),
                at=at,
            )
            log.info(
                "correction %s of %r revised: %s", open_one.id, fresh.title, difference.summary
            )
        return
    if difference is None:
        return
    state = CorrectionState.APPROVED if column.corrections == "auto" else CorrectionState.PENDING
    correction_id = records.create(
        conn,
        post_id=stored.id,
        send_id=send["id"],
        action=CorrectionAction.CORRECT,
        state=state,
        origin="the post was edited",
        base=base,
        new=fresh,
        summary=difference.summary,
        details=tuple(difference.lines),
        at=at,
    )
    log.info(
        "post %r edited after editors got it: correction %s (%s)",
        fresh.title,
        correction_id,
        difference.summary,
    )


def _with_id(post: Post, post_id: int) -> Post:
    return dataclasses.replace(post, id=post_id)


def on_feed(conn: Connection, settings: Settings, posts: list[Post], at: datetime) -> list[int]:
    """Propose a kill for each delivered column whose post left the feed inside its window."""
    if settings.channels.column.corrections == "off" or not posts:
        return []
    records.ensure_tables(conn)
    in_feed = {p.guid for p in posts}
    dates = [p.published for p in posts if p.published is not None]
    oldest = min(dates) if dates else None
    proposed = []
    for post, send in records.delivered_posts(conn, at - timedelta(days=KILL_WATCH_DAYS)):
        if post.guid in in_feed or post.id is None or oldest is None:
            continue
        if post.published is None or post.published <= oldest:
            continue  # scrolled off the end of the feed, not withdrawn
        if records.killed(conn, post.id) or records.open_for_post(
            conn, post.id, CorrectionAction.KILL
        ):
            continue
        proposed.append(
            propose_kill(conn, post, send["id"], "the post is no longer in the blog's feed", at)
        )
    return proposed


def propose_kill(conn: Connection, post: Post, send_id: int, why: str, at: datetime) -> int:
    assert post.id is not None
    correction_id = records.create(
        conn,
        post_id=post.id,
        send_id=send_id,
        action=CorrectionAction.KILL,
        state=CorrectionState.PENDING,
        origin=why,
        base=post,
        new=post,
        reason="withdrawn by the author",
        at=at,
    )
    log.warning(
        "%s: %r; a kill is proposed (correction %s), nothing is sent without you",
        why,
        post.title,
        correction_id,
    )
    return correction_id


# --- the author decides -----------------------------------------------------------------------


def ask_address(settings: Settings, key: bytes, correction: Correction, at: datetime) -> str:
    """The Reply-To of the question: an `approve` token naming the column's send and, in the
    recipient slot, the correction (approval previews put 0 there), signed with its time."""
    token = tokens.make(
        key, "approve", correction.send_id, correction.id, issued_at=int(at.timestamp())
    )
    return tokens.reply_address(settings.mail.reply_address, token)


def question(
    engine: Engine, settings: Settings, correction: Correction, key: bytes, at: datetime
) -> EmailMessage:
    """One email to the author: send this correction (or kill) to N editors?"""
    with engine.connect() as conn:
        editors = len(
            records.reached(conn, correction.send_id, records.sent_ids(conn, correction.post_id))
        )
    title = correction.new.title
    what = "a KILL" if correction.action is CorrectionAction.KILL else "a correction"
    lines = [f"Send {what} of “{title}” to {editors} editor{'s' if editors != 1 else ''}?", ""]
    if correction.action is CorrectionAction.KILL:
        lines += [
            f"Why it is proposed: {correction.origin}.",
            "Editors would be told not to publish it.",
        ]
    else:
        lines += [f"You edited the post after editors got it: it {correction.summary}.", ""]
        lines += [f"  {line}" for line in correction.details]
    lines += [
        "",
        "To send it, reply to this email with the word:  send",
        f'or run:  syndicate corrections send {correction.id} --note "…"',
        f"To leave editors alone:  syndicate corrections drop {correction.id}  (or reply: drop)",
        "",
        "What editors would get is attached.",
    ]
    msg = EmailMessage()
    msg["From"] = Address(settings.author.name, addr_spec=settings.mail.from_address)
    msg["To"] = Address(settings.author.name, addr_spec=settings.author.email)
    msg["Subject"] = lines[0]
    msg["Date"] = format_datetime(at)
    msg["Message-ID"] = make_msgid(f"syndicate.correction.c{correction.id}", settings.mail_domain)
    msg["Reply-To"] = ask_address(settings, key, correction, at)
    msg["X-Syndicate-Correction"] = str(correction.id)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content("\n".join(lines) + "\n")
    preview = _advisory_for_author(engine, settings, correction, key, at)
    msg.add_attachment(preview)
    return msg


def _advisory_for_author(
    engine: Engine, settings: Settings, correction: Correction, key: bytes, at: datetime
) -> EmailMessage:
    from syndicate.delivery import dispatch
    from syndicate.delivery.compose import compose
    from syndicate.models import Recipient, RecipientKind
    from syndicate.render import make_environment

    advisory = _advisory(engine, correction, at)
    env = make_environment(settings.path(settings.paths.templates))
    edition = render_advisory(advisory, correction.new, settings, env, at)
    author = Recipient(0, RecipientKind.EDITOR, settings.author.email, settings.author.name)
    return compose(edition, author, correction.send_id, dispatch.make_sender(settings, key), at)


def _advisory(engine: Engine, correction: Correction, at: datetime, note: str = "") -> Advisory:
    with engine.connect() as conn:
        send = store.get_send(conn, correction.send_id)
        version = records.sent_versions(conn, correction.post_id) + 2
    assert send is not None
    sent_at = store.as_utc(send["started_at"]) or correction.created_at
    release_at = store.as_utc(send["embargo_until"])
    if correction.action is CorrectionAction.KILL:
        kind = AdvisoryKind.KILL
    else:
        kind = kind_at(release_at, sent_at, at)
    return Advisory(
        kind,
        version,
        sent_at,
        release_at,
        changes=correction.summary,
        details=correction.details,
        note=note or correction.note,
        reason=correction.reason,
    )


def answer(
    engine: Engine,
    settings: Settings,
    correction_id: int,
    send_id: int,
    words: str,
    proof: str,
    at: datetime,
) -> tuple[bool, str]:
    """The author's authenticated reply to a question (approval.py checked token and proof)."""
    with engine.begin() as conn:
        records.ensure_tables(conn)
        correction = records.get(conn, correction_id)
    if correction is None or correction.send_id != send_id:
        return False, "no such correction"
    if not correction.open:
        return False, f"correction {correction_id} is already {correction.state.value}"
    if words.startswith(DROP_WORDS):
        drop(engine, correction_id)
        return True, f"correction {correction_id} dropped by reply ({proof})"
    if not words.startswith(SEND_WORDS):
        return False, f"the reply says neither 'send' nor 'drop' (it starts {words[:40]!r})"
    with engine.begin() as conn:
        changed = records.set_state(
            conn,
            correction_id,
            CorrectionState.APPROVED,
            approved_at=at,
            approved_by=f"reply ({proof})",
        )
    log.info(
        "correction %s approved by reply (%s); it goes out at the next tick", correction_id, proof
    )
    return changed, f"correction {correction_id} approved by reply ({proof})"


def drop(engine: Engine, correction_id: int) -> Correction:
    with engine.begin() as conn:
        correction = _load(conn, correction_id)
        if not correction.open:
            raise SyndicateError(f"correction {correction_id} is already {correction.state.value}")
        records.set_state(conn, correction_id, CorrectionState.DROPPED, updated_at=store.now())
        return _load(conn, correction_id)


def _load(conn: Connection, correction_id: int) -> Correction:
    records.ensure_tables(conn)
    correction = records.get(conn, correction_id)
    if correction is None:
        raise SyndicateError(f"no correction {correction_id} (see 'syndicate corrections list')")
    return correction


def show(engine: Engine, correction_id: int) -> tuple[Correction, list[dict]]:
    with engine.begin() as conn:
        correction = _load(conn, correction_id)
        return correction, records.delivered_to(conn, correction_id)


def listed(engine: Engine, open_only: bool = False) -> list[Correction]:
    with engine.begin() as conn:
        records.ensure_tables(conn)
        return records.listed(conn, open_only=open_only)


# --- sending ----------------------------------------------------------------------------------


def send(
    engine: Engine,
    settings: Settings,
    correction_id: int,
    *,
    note: str = "",
    by: str = "cli",
    at: datetime | None = None,
) -> Outcome:
    """Send an open correction (or kill) now to every editor who had the column and is active."""
    at = at or store.now()
    with engine.begin() as conn:
        correction = _load(conn, correction_id)
        if not correction.open:
            raise SyndicateError(f"correction {correction_id} is already {correction.state.value}")
        if note:
            records.set_note(conn, correction_id, " ".join(note.split()))
        if not records.set_state(
            conn,
            correction_id,
            CorrectionState.SENDING,
            approved_at=correction.approved_at or at,
            approved_by=correction.approved_by or by,
        ):
            raise SyndicateError(f"correction {correction_id} is being sent by another process")
        correction = _load(conn, correction_id)
    try:
        return _deliver(engine, settings, correction, at)
    except BaseException:
        with engine.begin() as conn:
            records.release(conn, correction_id)
        raise


def _deliver(engine: Engine, settings: Settings, correction: Correction, at: datetime) -> Outcome:
    from syndicate.delivery import dispatch
    from syndicate.delivery.compose import compose, envelope_sender
    from syndicate.delivery.transports import make_transport, notice
    from syndicate.render import make_environment
    from syndicate.render.column import default_profile, profile_defaults
    from syndicate.render.editor_profile import profile_of

    advisory = _advisory(engine, correction, at)
    key = store.hmac_key(engine, settings.hmac_key_from_env())
    sender = dispatch.make_sender(settings, key)
    env = make_environment(settings.path(settings.paths.templates))
    with engine.connect() as conn:
        audience = records.reached(
            conn, correction.send_id, records.sent_ids(conn, correction.post_id)
        )
    editions: dict[tuple[str, ...], Edition] = {}
    messages: list[OutboundMessage] = []
    for reach in audience:
        recipient = reach.recipient
        found, _ = profile_of(recipient, profile_defaults(settings))
        profile = found or default_profile(settings)
        edition = editions.get(profile.key())
        if edition is None:
            edition = editions[profile.key()] = render_advisory(
                advisory, correction.new, settings, env, at, profile
            )
        email = compose(edition, recipient, correction.send_id, sender, at)
        del email["Message-ID"]
        email["Message-ID"] = make_msgid(
            f"syndicate.correction.c{correction.id}.r{recipient.id}", sender.domain
        )
        threading = threading_headers(reach.message_ids[-1], " ".join(reach.message_ids[:-1]))
        for name, value in {**threading, **headers_for(advisory)}.items():
            email[name] = value
        messages.append(
            notice(
                email,
                recipient,
                envelope_from=envelope_sender(sender, correction.send_id, recipient.id),
                label=f"c{correction.id}-",
                number=recipient.id,
            )
        )
    results = []
    if messages:
        transport = make_transport(settings)
        try:
            transport.open()
            results = transport.send_batch(messages)
        except TransportError as exc:
            raise SyndicateError(f"correction {correction.id} not sent: {exc}") from exc
        finally:
            transport.close()
    by_id = {m.delivery_id: m for m in messages}
    cancelled: tuple[int, ...] = ()
    with engine.begin() as conn:
        for result in results:
            message = by_id[result.delivery_id]
            records.record_delivery(
                conn,
                correction.id,
                message.recipient.id,
                message.message_id,
                result.state,
                result.detail,
                at,
            )
        records.finish(
            conn, correction.id, advisory=advisory.kind.value, version=advisory.version, at=at
        )
        if correction.action is CorrectionAction.KILL:
            cancelled = _cancel_sends(conn, correction.post_id)
            for other in records.listed(conn, open_only=True):
                if other.post_id == correction.post_id:
                    records.set_state(conn, other.id, CorrectionState.DROPPED, updated_at=at)
    sent = sum(r.state is DeliveryState.SENT for r in results)
    log.info(
        "correction %s (%s v%s) of %r: sent to %d editor(s), %d not",
        correction.id,
        advisory.kind.label,
        advisory.version,
        correction.new.title,
        sent,
        len(results) - sent,
    )
    return Outcome(correction.id, advisory.kind.value, sent, len(results) - sent, cancelled)


def _cancel_sends(conn: Connection, post_id: int) -> tuple[int, ...]:
    cancelled = []
    for channel in Channel:
        send = store.find_send(conn, post_id, channel)
        if send and send["state"] not in (SendState.DONE.value, SendState.CANCELLED.value):
            store.set_send_state(conn, send["id"], SendState.CANCELLED)
            cancelled.append(send["id"])
    store.unqueue_digest(conn, post_id)
    return tuple(cancelled)


def kill(
    engine: Engine, settings: Settings, post_ref: str, reason: str, at: datetime | None = None
) -> Outcome:
    """`syndicate kill POST --reason`: editors who had it are told not to publish it, and every
    send of it still to come is cancelled."""
    at = at or store.now()
    if not reason.strip():
        raise SyndicateError("--reason is required: editors are told why a column is withdrawn")
    with engine.begin() as conn:
        records.ensure_tables(conn)
        post = store.find_post(conn, post_ref)
        if post is None or post.id is None:
            raise SyndicateError(f"no post {post_ref!r} (see 'syndicate posts list')")
        if records.killed(conn, post.id):
            raise SyndicateError(f"“{post.title}” was already killed")
        column = records.delivered_column(conn, post.id)
        if column is None:
            cancelled = _cancel_sends(conn, post.id)
            return Outcome(0, "none", 0, 0, cancelled)
        proposed = records.open_for_post(conn, post.id, CorrectionAction.KILL)
        correction_id = (
            proposed.id
            if proposed
            else propose_kill(conn, post, column["id"], "syndicate kill", at)
        )
        records.set_reason(conn, correction_id, " ".join(reason.split()))
    return send(engine, settings, correction_id, by="syndicate kill", at=at)


# --- the daemon's tick ------------------------------------------------------------------------


def tick(engine: Engine, settings: Settings, at: datetime | None = None) -> int:
    """Ask the author about new corrections; send approved ones. Returns how many went out."""
    at = at or store.now()
    with engine.begin() as conn:
        records.ensure_tables(conn)
        waiting = records.listed(conn, open_only=True)
    sent = 0
    for correction in reversed(waiting):
        if correction.state is CorrectionState.APPROVED:
            try:
                send(engine, settings, correction.id, by=correction.approved_by or "auto", at=at)
                sent += 1
            except SyndicateError as exc:
                log.error("%s", exc)
        elif correction.asked_at is None:
            _ask(engine, settings, correction, at)
    return sent


def _ask(engine: Engine, settings: Settings, correction: Correction, at: datetime) -> None:
    from syndicate.scheduling.approval import deliver_to_author

    key = store.hmac_key(engine, settings.hmac_key_from_env())
    message = question(engine, settings, correction, key, at)
    if deliver_to_author(settings, message, correction.id, label="correction"):
        with engine.begin() as conn:
            records.mark_asked(conn, correction.id, at)
