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
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from syndicate import db
from syndicate.corrections import outgoing
from syndicate.corrections.detect import compare, detect
from syndicate.corrections.rows import Correction, CorrectionAction, CorrectionState
from syndicate.db import Connection, Engine
from syndicate.delivery import workers
from syndicate.errors import SyndicateError
from syndicate.inbound.answers import is_answer
from syndicate.models import Channel, DeliveryState, Post, RecipientKind, SendState
from syndicate.settings import Settings

if TYPE_CHECKING:
    from syndicate.runtime import Runtime

log = logging.getLogger(__name__)

SEND_WORDS = ("send", "yes, send", "ok send", "ok, send", "approve", "approved")
DROP_WORDS = ("drop", "don't send", "do not send")
# A delivered column missing from the feed is a proposed kill only while it would still be in
# the feed's window (newer than the feed's oldest post): older posts simply scroll off the end.
KILL_WATCH_DAYS = 30
# A correction claimed for sending longer ago than this was left by a process that died
# (deliveries are recorded in one transaction after the transport answers, so none were); one
# whose process was on this machine and is gone is sent again at once (_died_sending).
STALE_SENDING = timedelta(hours=1)
BY_HAND = "syndicate kill"


@dataclass(frozen=True)
class CorrectionOutcome:
    """What a send of a correction did: the advisory kind and how many editors got it."""

    correction_id: int
    kind: str
    sent: int
    failed: int
    cancelled_sends: tuple[int, ...] = ()
    readers: int = 0  # readers sent a short note ([channels.newsletter] corrections = "notice")


# --- found by the feed poll -----------------------------------------------------------------


def on_edit(conn: Connection, settings: Settings, stored: Post, fresh: Post, at: datetime) -> None:
    """Compare a known post with the feed's version; open or revise a correction if it matters."""
    column = settings.channels.column
    if column.corrections == "off" or stored.id is None:
        return
    send = db.corrections.delivered_column(conn, stored.id)
    if send is None or db.corrections.killed(conn, stored.id):
        return
    fresh = _with_id(fresh, stored.id)
    open_one = db.corrections.open_for_post(conn, stored.id, CorrectionAction.CORRECT)
    last = db.corrections.last_sent(conn, stored.id)
    small = db.corrections.first_ignored(conn, stored.id) if last is None else None
    # What editors have: the stored copy is refreshed by every poll, so small edits ignored
    # earlier are kept as a baseline row and add up with later ones.
    base = open_one.base if open_one else last.new if last else small.base if small else stored
    difference = detect(base, fresh, column.corrections_min_words)
    if open_one is not None:
        if difference is None:
            db.corrections.set_state(conn, open_one.id, CorrectionState.REVERTED, updated_at=at)
            log.info(
                "post %r is back to what editors have: correction %s closed",
                fresh.title,
                open_one.id,
            )
        elif compare(open_one.new, fresh).changes:
            db.corrections.revise(
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
        if last is None and small is None and compare(base, fresh).changes:
            db.corrections.create(
                conn,
                post_id=stored.id,
                send_id=send.id,
                action=CorrectionAction.CORRECT,
                state=CorrectionState.IGNORED,
                origin="an edit below corrections_min_words",
                base=base,
                new=fresh,
                at=at,
            )
        return
    state = CorrectionState.APPROVED if column.corrections == "auto" else CorrectionState.PENDING
    correction_id = db.corrections.create(
        conn,
        post_id=stored.id,
        send_id=send.id,
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
    in_feed = {p.guid for p in posts}
    dates = [p.published for p in posts if p.published is not None]
    oldest = min(dates) if dates else None
    for waiting in db.corrections.listed(conn, open_only=True):
        if (
            waiting.action is CorrectionAction.KILL
            and waiting.origin != BY_HAND
            and waiting.new.guid in in_feed
        ):
            db.corrections.set_state(conn, waiting.id, CorrectionState.REVERTED, updated_at=at)
            log.info("%r is back in the feed: proposed kill %s closed", waiting.title, waiting.id)
    proposed = []
    for post, send in db.corrections.delivered_posts(conn, at - timedelta(days=KILL_WATCH_DAYS)):
        if post.guid in in_feed or post.id is None or oldest is None:
            continue
        if post.published is None or post.published <= oldest:
            continue  # scrolled off the end of the feed, not withdrawn
        if _kill_known(conn, post.id):
            continue
        proposed.append(
            propose_kill(conn, post, send.id, "the post is no longer in the blog's feed", at)
        )
    return proposed


def check_links(engine: Engine, settings: Settings, posts: list[Post], at: datetime) -> list[int]:
    """A delivered column missing from the feed whose page answers 404 or 410 is a proposed kill
    too (it may have scrolled off the feed's end, but its page is gone). Only for a feed read
    over HTTP; called after the poll's transaction, since it asks the blog over the network."""
    column = settings.channels.column
    if column.corrections == "off" or not settings.feed.source.lower().startswith("http"):
        return []
    in_feed = {p.guid for p in posts}
    with engine.begin() as conn:
        missing = [
            (post, send)
            for post, send in db.corrections.delivered_posts(
                conn, at - timedelta(days=KILL_WATCH_DAYS)
            )
            if post.guid not in in_feed and post.id is not None and not _kill_known(conn, post.id)
        ]
    gone = [(p, s, code) for p, s in missing if (code := _page_status(p.link, settings)) in GONE]
    with engine.begin() as conn:
        return [
            propose_kill(conn, p, s.id, f"its page answers HTTP {code}", at) for p, s, code in gone
        ]


GONE = (404, 410)


def _kill_known(conn: Connection, post_id: int) -> bool:
    return db.corrections.killed(conn, post_id) or bool(
        db.corrections.open_for_post(conn, post_id, CorrectionAction.KILL)
    )


def _page_status(link: str, settings: Settings) -> int | None:
    """The HTTP status of a post's page (HEAD, then GET if HEAD is refused); None if unknown."""
    if not link.lower().startswith(("http://", "https://")):
        return None
    import httpx

    headers = {"User-Agent": settings.feed.user_agent}
    try:
        with httpx.Client(timeout=settings.feed.timeout_seconds, follow_redirects=True) as client:
            status = client.head(link, headers=headers).status_code
            if status in (405, 501):
                with client.stream("GET", link, headers=headers) as response:
                    status = response.status_code
    except httpx.HTTPError as exc:
        log.info("could not check %s: %s", link, exc)
        return None
    return status


def propose_kill(conn: Connection, post: Post, send_id: int, why: str, at: datetime) -> int:
    assert post.id is not None
    correction_id = db.corrections.create(
        conn,
        post_id=post.id,
        send_id=send_id,
        action=CorrectionAction.KILL,
        state=CorrectionState.PENDING,
        origin=why,
        base=post,
        new=post,
        reason="" if why == BY_HAND else "the post was taken off the blog",
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


def answer(
    runtime: Runtime,
    correction_id: int,
    send_id: int,
    words: str,
    proof: str,
    at: datetime,
) -> tuple[bool, str]:
    """The author's authenticated reply to a question (approval.py checked token and proof)."""
    engine = runtime.engine
    with engine.begin() as conn:
        correction = db.corrections.get(conn, correction_id)
    if correction is None or correction.send_id != send_id:
        return False, "no such correction"
    if not correction.open:
        return False, f"correction {correction_id} is already {correction.state.value}"
    if is_answer(words, DROP_WORDS):
        drop(runtime, correction_id, at)
        return True, f"correction {correction_id} dropped by reply ({proof})"
    if not is_answer(words, SEND_WORDS):
        return False, (
            f"the reply's first line is neither 'send' nor 'drop' alone (it says {words[:60]!r})"
        )
    with engine.begin() as conn:
        changed = db.corrections.set_state(
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


def drop(runtime: Runtime, correction_id: int, at: datetime | None = None) -> Correction:
    with runtime.engine.begin() as conn:
        correction = _load(conn, correction_id)
        if not correction.open:
            raise SyndicateError(f"correction {correction_id} is already {correction.state.value}")
        db.corrections.set_state(
            conn, correction_id, CorrectionState.DROPPED, updated_at=at or runtime.now()
        )
        return _load(conn, correction_id)


def _load(conn: Connection, correction_id: int) -> Correction:
    correction = db.corrections.get(conn, correction_id)
    if correction is None:
        raise SyndicateError(f"no correction {correction_id} (see 'syndicate corrections list')")
    return correction


# --- sending ----------------------------------------------------------------------------------


def send(
    runtime: Runtime,
    correction_id: int,
    *,
    note: str = "",
    by: str = "cli",
    at: datetime | None = None,
) -> CorrectionOutcome:
    """Send an open correction (or kill) now to every editor who had the column and is active."""
    engine, at = runtime.engine, at or runtime.now()
    with engine.begin() as conn:
        correction = _load(conn, correction_id)
        if not correction.open:
            raise SyndicateError(f"correction {correction_id} is already {correction.state.value}")
        if note and correction.action is CorrectionAction.KILL:
            db.corrections.set_reason(conn, correction_id, " ".join(note.split()))
        elif note:
            db.corrections.set_note(conn, correction_id, " ".join(note.split()))
        if not db.corrections.set_state(
            conn,
            correction_id,
            CorrectionState.SENDING,
            approved_at=correction.approved_at or at,
            approved_by=correction.approved_by or by,
            updated_at=at,
            claimed_by=workers.claimer_name(),
        ):
            raise SyndicateError(f"correction {correction_id} is being sent by another process")
        correction = _load(conn, correction_id)
    try:
        advisory, results = outgoing.deliver(runtime, correction, at)
    except BaseException:
        with engine.begin() as conn:
            db.corrections.release(conn, correction_id)
        raise
    cancelled: tuple[int, ...] = ()
    with engine.begin() as conn:
        _record(conn, correction.id, results, at)
        db.corrections.finish(
            conn, correction.id, advisory=advisory.kind.value, version=advisory.version, at=at
        )
        if correction.action is CorrectionAction.KILL:
            cancelled = _cancel_sends(conn, correction.post_id)
            for other in db.corrections.listed(conn, open_only=True):
                if other.post_id == correction.post_id:
                    db.corrections.set_state(conn, other.id, CorrectionState.DROPPED, updated_at=at)
    editors = [r for r in results if r.recipient.kind is RecipientKind.EDITOR]
    sent = sum(r.state is DeliveryState.SENT for r in editors)
    readers = sum(
        r.state is DeliveryState.SENT for r in results if r.recipient.kind is RecipientKind.READER
    )
    log.info(
        "correction %s (%s v%s) of %r: sent to %d editor(s), %d not; %d reader note(s)",
        correction.id,
        advisory.kind.label,
        advisory.version,
        correction.new.title,
        sent,
        len(editors) - sent,
        readers,
    )
    return CorrectionOutcome(
        correction.id, advisory.kind.value, sent, len(editors) - sent, cancelled, readers
    )


def _cancel_sends(conn: Connection, post_id: int) -> tuple[int, ...]:
    cancelled = []
    for channel in Channel:
        send = db.sends.find_send(conn, post_id, channel)
        if send and send.state not in (SendState.DONE.value, SendState.CANCELLED.value):
            db.sends.set_send_state(conn, send.id, SendState.CANCELLED)
            cancelled.append(send.id)
    db.sends.unqueue_digest(conn, post_id)
    return tuple(cancelled)


def kill(
    runtime: Runtime, post_ref: str, reason: str, at: datetime | None = None
) -> CorrectionOutcome:
    """`syndicate kill POST --reason`: editors who had it are told not to publish it, and every
    send of it still to come is cancelled."""
    engine, at = runtime.engine, at or runtime.now()
    if not reason.strip():
        raise SyndicateError("--reason is required: editors are told why a column is withdrawn")
    with engine.begin() as conn:
        post = db.posts.find_post(conn, post_ref)
        if post is None or post.id is None:
            raise SyndicateError(f"no post {post_ref!r} (see 'syndicate posts list')")
        if db.corrections.killed(conn, post.id):
            raise SyndicateError(f"“{post.title}” was already killed")
        column = db.corrections.delivered_column(conn, post.id)
        if column is None:
            cancelled = _cancel_sends(conn, post.id)
            return CorrectionOutcome(0, "none", 0, 0, cancelled)
        proposed = db.corrections.open_for_post(conn, post.id, CorrectionAction.KILL)
        correction_id = (
            proposed.id if proposed else propose_kill(conn, post, column.id, BY_HAND, at)
        )
        db.corrections.set_reason(conn, correction_id, " ".join(reason.split()))
    return send(runtime, correction_id, by="syndicate kill", at=at)


# --- the daemon's tick ------------------------------------------------------------------------


def tick(runtime: Runtime, at: datetime | None = None) -> int:
    """Ask the author about new corrections; send approved ones. Returns how many went out."""
    engine, at = runtime.engine, at or runtime.now()
    with engine.begin() as conn:
        for stale in db.corrections.release_stale(conn, at - STALE_SENDING, _died_sending):
            log.warning(
                "correction %s was left 'sending' by a process that died; it is sent again "
                "(an editor may get it twice, never not at all)",
                stale,
            )
        waiting = db.corrections.listed(conn, open_only=True)
    sent = 0
    for correction in reversed(waiting):
        if correction.state is CorrectionState.APPROVED:
            try:
                send(runtime, correction.id, by=correction.approved_by or "auto", at=at)
                sent += 1
            except SyndicateError as exc:
                log.error("%s", exc)
        elif correction.asked_at is None:
            _ask(runtime, correction, at)
    _retry_deferred(runtime, at)
    return sent


def _died_sending(claimer: str) -> bool:
    """The process of this machine that claimed a correction no longer runs. A claim of this
    very process is a send in flight in another thread (the desk's), never judged dead."""
    if claimer.rsplit(":", 2)[1:2] == [str(os.getpid())]:
        return False
    return workers.gone(claimer)


def _retry_deferred(runtime: Runtime, at: datetime) -> None:
    """Messages a server deferred (4xx) are tried again at each tick, like deliveries."""
    engine, max_attempts = runtime.engine, runtime.settings.transport.retry.max_attempts
    with engine.connect() as conn:
        waiting = db.corrections.deferred(conn, max_attempts)
        corrections = {cid: db.corrections.get(conn, cid) for cid in waiting}
    for correction_id, recipients in waiting.items():
        correction = corrections[correction_id]
        if correction is None:
            continue
        try:
            _, results = outgoing.deliver(runtime, correction, at, only=recipients)
        except SyndicateError as exc:
            log.error("%s", exc)
            continue
        with engine.begin() as conn:
            _record(conn, correction.id, results, at)


def _record(
    conn: Connection, correction_id: int, results: list[outgoing.Result], at: datetime
) -> None:
    for result in results:
        db.corrections.record_delivery(
            conn,
            correction_id,
            result.recipient.id,
            result.message_id,
            result.state,
            result.detail,
            at,
        )


def _ask(runtime: Runtime, correction: Correction, at: datetime) -> None:
    from syndicate.scheduling.approval import deliver_to_author

    message = outgoing.question(runtime, correction, at)
    if deliver_to_author(runtime, message):
        with runtime.engine.begin() as conn:
            db.corrections.mark_asked(conn, correction.id, at)
