"""The replies inbox: by post and kind, read or unread, each reply's own words with the original
message a click away, an answer written in the browser (sent through the configured transport,
threaded under the reader's message, recorded), and comments published to WordPress."""

from __future__ import annotations

import logging
from email.errors import MessageError
from email.header import decode_header, make_header
from email.utils import make_msgid, parseaddr
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from syndicate import db
from syndicate.audience import importers
from syndicate.db.answers import Answer
from syndicate.delivery.message import OutboundMessage
from syndicate.desk import queries
from syndicate.desk.app import Desk, Handler
from syndicate.desk.auth import Session
from syndicate.errors import SyndicateError
from syndicate.headers import one_line
from syndicate.models import DeliveryState, ReplyKind
from syndicate.scheduling.timeparse import short
from syndicate.settings import Settings

log = logging.getLogger(__name__)

# Kinds a person wrote, which the author may answer.
ANSWERABLE = (ReplyKind.COMMENT.value, ReplyKind.EDITOR_RESPONSE.value, ReplyKind.UNMATCHED.value)
MAX_ANSWER_CHARS = 20_000


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


async def inbox(desk: Desk, request: Request, session: Session) -> Response:
    post_id = _int(request.query_params.get("post"))
    kind = request.query_params.get("kind") or None
    unread = request.query_params.get("unread") == "1"
    kinds = await run_in_threadpool(queries.reply_kinds, desk.engine)
    if kind not in kinds:
        kind = None
    rows = await run_in_threadpool(queries.replies, desk.engine, post_id, kind, unread)
    posts = await run_in_threadpool(queries.replied_posts, desk.engine)
    return desk.page(
        "replies.html.j2",
        session,
        title="Replies",
        section="replies",
        rows=rows,
        kinds=kinds,
        posts=posts,
        post_id=post_id,
        kind=kind or "",
        unread=unread,
        when=lambda value: short(db.as_utc(value), desk.settings.zone),
    )


async def _reply(desk: Desk, request: Request, session: Session) -> dict[str, Any] | Response:
    """The reply the path names, or the page saying there is none."""
    reply_id = int(request.path_params["reply_id"])
    row = await run_in_threadpool(queries.reply, desk.engine, reply_id)
    if row is None:
        message = "No such reply."
        return desk.page("notice.html.j2", session, 404, title="Not found", message=message)
    return row


async def show(
    desk: Desk, request: Request, session: Session, *, error: str = "", status: int = 200
) -> Response:
    row = await _reply(desk, request, session)
    if isinstance(row, Response):
        return row
    return desk.page(
        "reply.html.j2",
        session,
        status,
        title=row["subject"] or "(no subject)",
        section="replies",
        reply=row,
        answerable=row["kind"] in ANSWERABLE,
        wordpress=bool(desk.settings.inbound.wordpress.url) and row["kind"] == "comment",
        error=error,
        done=request.query_params.get("done", "") if not error else "",
        when=lambda value: short(db.as_utc(value), desk.settings.zone) if value else "",
    )


async def show_reply(desk: Desk, request: Request, session: Session) -> Response:
    return await show(desk, request, session)


async def original(desk: Desk, request: Request, session: Session) -> Response:
    """The message as it arrived, as plain text: shown, never interpreted."""
    row = await _reply(desk, request, session)
    if isinstance(row, Response):
        return row
    return Response(
        bytes(row["raw"]),
        media_type="text/plain; charset=utf-8",
        headers={
            "Content-Disposition": f'inline; filename="reply-{row["id"]}.eml"',
            "Cache-Control": "no-store",
        },
    )


def _set_read(read: bool) -> Handler:
    async def mark(desk: Desk, request: Request, session: Session) -> Response:
        row = await _reply(desk, request, session)
        if isinstance(row, Response):
            return row
        await run_in_threadpool(queries.set_read, desk.engine, row["id"], read)
        return desk.redirect(f"/replies/{row['id']}?done={'read' if read else 'unread'}")

    return mark


def answer_to(row: dict[str, Any]) -> tuple[str, str]:
    """(address, name) of the person who wrote: the subscriber we sent to, else the From."""
    recipient = row["recipient"]
    if recipient is not None:
        return recipient.email, display_name(recipient.name or row["sender_name"] or "")
    name, address = parseaddr(row["sender"])
    return address, display_name(row["sender_name"] or name)


def display_name(name: str) -> str:
    """A stranger's From name fit for our To header: RFC 2047 words decoded (they may hide
    CR/LF, which the email package refuses when it writes the header), then one line."""
    try:
        decoded = str(make_header(decode_header(name)))
    except (LookupError, UnicodeDecodeError, MessageError):  # unknown charset, broken bytes
        decoded = name
    return one_line(decoded)


def answer_message(
    settings: Settings, row: dict[str, Any], text: str, to: str, name: str
) -> OutboundMessage:
    """The author's answer, threaded under the reader's message (In-Reply-To, References)."""
    from syndicate.delivery.message import Mailbox
    from syndicate.delivery.notices import notice

    subject = one_line(row["subject"]) or "your reply"
    threading = []
    if row["message_id"]:
        message_id = one_line(row["message_id"])
        references = " ".join([*row["references"].split(), message_id])
        threading = [("In-Reply-To", message_id), ("References", references)]
    return notice(
        sender=Mailbox(settings.author.name, settings.mail.from_address),
        to=Mailbox(name, to),
        reply_to=Mailbox("", settings.author.email),
        subject=subject if subject.lower().startswith("re:") else f"Re: {subject}",
        text=text,
        date=db.now(),
        message_id=make_msgid("syndicate.answer", settings.mail_domain),
        headers=threading,
        label="answer",
        number=row["id"],
    )


def _deliver(desk: Desk, row: dict[str, Any], text: str) -> Answer:
    from syndicate.delivery import notices

    to, name = answer_to(row)
    checked, why = importers.check_address(to)
    if checked is None:
        raise SyndicateError(f"cannot answer {to!r}: {why}")
    try:
        message = answer_message(desk.settings, row, text, checked, name)
        result = notices.send(desk.runtime.transport(), message)
    except (ValueError, MessageError) as exc:  # the email package refusing a header
        raise SyndicateError(f"the answer to {checked} could not be written: {exc}") from exc
    if result.state is not DeliveryState.SENT:
        raise SyndicateError(f"the answer to {checked} was not sent: {result.detail}")
    answer = queries.record_answer(
        desk.engine, row["id"], desk.runtime.now(), checked, message.message_id, text
    )
    log.info("desk: answer to reply %s sent to %s", row["id"], checked)
    return answer


async def answer(desk: Desk, request: Request, session: Session) -> Response:
    row = await _reply(desk, request, session)
    if isinstance(row, Response):
        return row
    form = await desk.form(request)
    text = str(form.get("text", "")).replace("\r\n", "\n").strip()
    try:
        if row["kind"] not in ANSWERABLE:
            raise SyndicateError(f"a {row['kind'].replace('_', ' ')} message is not answered")
        if not text:
            raise SyndicateError("the answer is empty; nothing was sent")
        if len(text) > MAX_ANSWER_CHARS:
            raise SyndicateError(f"the answer is longer than {MAX_ANSWER_CHARS:,} characters")
        await run_in_threadpool(_deliver, desk, row, text)
    except SyndicateError as exc:
        return await show(desk, request, session, error=str(exc), status=400)
    return desk.redirect(f"/replies/{row['id']}?done=answered")


async def publish(desk: Desk, request: Request, session: Session) -> Response:
    """What `syndicate replies push` does, for this one comment."""
    from syndicate.inbound import wordpress

    row = await _reply(desk, request, session)
    if isinstance(row, Response):
        return row
    listed = await run_in_threadpool(
        queries.replies, desk.engine, row["post_id"], ReplyKind.COMMENT.value, False
    )
    comment = [r for r in listed if r.id == row["id"]]
    try:
        if not comment:
            raise SyndicateError("only a reader's comment on a post can be published")
        [(_, result)] = await run_in_threadpool(
            wordpress.push, desk.settings.inbound.wordpress, comment
        )
    except SyndicateError as exc:
        return await show(desk, request, session, error=str(exc), status=400)
    return desk.page(
        "notice.html.j2",
        session,
        title="Sent to WordPress",
        message=f"WordPress answered: {result}",
    )


ROUTES: list[tuple[str, Handler, str]] = [
    ("/replies", inbox, "GET"),
    ("/replies/{reply_id:int}", show_reply, "GET"),
    ("/replies/{reply_id:int}/original", original, "GET"),
    ("/replies/{reply_id:int}/read", _set_read(True), "POST"),
    ("/replies/{reply_id:int}/unread", _set_read(False), "POST"),
    ("/replies/{reply_id:int}/answer", answer, "POST"),
    ("/replies/{reply_id:int}/publish", publish, "POST"),
]
