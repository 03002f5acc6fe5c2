"""The messages corrections send: the question to the author, the advisory to each editor who
had the column (threaded under it), and readers' short notes; and the one transport session.

State lives with the caller (control.py): this module renders, composes and transmits.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import make_msgid
from typing import TYPE_CHECKING

from jinja2 import Environment

from syndicate import db, tokens
from syndicate.corrections.advisory import (
    Advisory,
    AdvisoryKind,
    day_name,
    headers_for,
    kind_at,
    render_advisory,
    threading_headers,
)
from syndicate.corrections.rows import QUESTION_SLOT, Correction, CorrectionAction, Reached
from syndicate.db import Engine
from syndicate.delivery.message import Content, Mailbox, OutboundMessage
from syndicate.errors import SyndicateError, TransportError
from syndicate.models import (
    Attachment,
    Channel,
    DeliveryState,
    Edition,
    Recipient,
    RecipientKind,
)
from syndicate.settings import Settings

if TYPE_CHECKING:
    from syndicate.runtime import Runtime


@dataclass(frozen=True)
class Result:
    recipient: Recipient
    message_id: str
    state: DeliveryState
    detail: str


# --- the question to the author ---------------------------------------------------------------


def ask_address(settings: Settings, key: bytes, correction: Correction, at: datetime) -> str:
    """The Reply-To of the question: an `approve` token naming the column's send and, in the
    recipient slot, the correction (approval previews put 0 there), signed with its time."""
    slot = QUESTION_SLOT + correction.id
    token = tokens.make(key, "approve", correction.send_id, slot, issued_at=int(at.timestamp()))
    return tokens.reply_address(settings.mail.reply_address, token)


def question(runtime: Runtime, correction: Correction, at: datetime) -> OutboundMessage:
    """One email to the author: send this correction (or kill) to N editors?"""
    settings, key = runtime.settings, runtime.key
    with runtime.engine.connect() as conn:
        editors = len(
            db.corrections.reached(
                conn, correction.send_id, db.corrections.sent_ids(conn, correction.post_id)
            )
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
    from syndicate.delivery import mime
    from syndicate.delivery.notices import notice

    preview = mime.as_bytes(_advisory_for_author(runtime, correction, at))
    return notice(
        sender=Mailbox(settings.author.name, settings.mail.from_address),
        to=Mailbox(settings.author.name, settings.author.email),
        reply_to=Mailbox("", ask_address(settings, key, correction, at)),
        subject=lines[0],
        text="\n".join(lines) + "\n",
        attachments=(Attachment(f"correction-{correction.id}.eml", "message/rfc822", preview),),
        date=at,
        message_id=make_msgid(f"syndicate.correction.c{correction.id}", settings.mail_domain),
        headers=[
            ("X-Syndicate-Correction", str(correction.id)),
            ("Auto-Submitted", "auto-generated"),
        ],
        label="correction",
        number=correction.id,
    )


def _advisory_for_author(runtime: Runtime, correction: Correction, at: datetime) -> OutboundMessage:
    from syndicate.delivery import dispatch
    from syndicate.delivery.compose import compose

    settings = runtime.settings
    advisory = advisory_for(runtime.engine, correction, at)
    edition = render_advisory(advisory, correction.new, settings, runtime.templates, at)
    author = Recipient(0, RecipientKind.EDITOR, settings.author.email, settings.author.name)
    sender = dispatch.make_sender(settings, runtime.key)
    return compose(edition, author, correction.send_id, sender, at)


def advisory_for(engine: Engine, correction: Correction, at: datetime, note: str = "") -> Advisory:
    with engine.connect() as conn:
        send = db.sends.get_send(conn, correction.send_id)
        version = db.corrections.sent_versions(conn, correction.post_id) + 2
    assert send is not None
    sent_at = db.as_utc(send.started_at) or correction.created_at
    release_at = db.as_utc(send.embargo_until)
    if correction.advisory:  # a retry says what the first attempt said
        kind, version = AdvisoryKind(correction.advisory), correction.version
    elif correction.action is CorrectionAction.KILL:
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


# --- advisories and notices -------------------------------------------------------------------


def deliver(
    runtime: Runtime,
    correction: Correction,
    at: datetime,
    only: frozenset[int] | None = None,
) -> tuple[Advisory, list[Result]]:
    """Send the advisory to every editor who had the column and is still active (and, with
    `[channels.newsletter] corrections = "notice"`, a short note to readers who had the post);
    `only` these recipients when a deferred message is tried again."""
    from syndicate.delivery import dispatch
    from syndicate.delivery.compose import edition_content, personalise
    from syndicate.render.column import default_profile, profile_defaults
    from syndicate.render.editor_profile import profile_of

    engine, settings, env = runtime.engine, runtime.settings, runtime.templates
    advisory = advisory_for(engine, correction, at)
    sender = dispatch.make_sender(settings, runtime.key)
    with engine.connect() as conn:
        earlier = [
            c for c in db.corrections.sent_ids(conn, correction.post_id) if c != correction.id
        ]
        editors = db.corrections.reached(conn, correction.send_id, earlier)
        readers: list[Reached] = []
        # Readers had the post in its own newsletter, or in the digest that carried it.
        newsletter = db.sends.find_send(conn, correction.post_id, Channel.NEWSLETTER)
        reader_send = (
            newsletter.id if newsletter else db.sends.digest_send_of(conn, correction.post_id)
        )
        if reader_send and _notify_readers(settings, correction):
            readers = db.corrections.reached(conn, reader_send, earlier, RecipientKind.READER)
    if only is not None:
        editors = [r for r in editors if r.recipient.id in only]
        readers = [r for r in readers if r.recipient.id in only]
    editions: dict[tuple[str, ...], Edition] = {}
    contents: dict[tuple[int, int], Content] = {}  # (edition, send) → encoded once
    outbound: list[OutboundMessage] = []
    for reach, send_id in [(r, correction.send_id) for r in editors] + [
        (r, reader_send or 0) for r in readers
    ]:
        recipient = reach.recipient
        if recipient.kind is RecipientKind.EDITOR:
            found, _ = profile_of(recipient, profile_defaults(settings))
            profile = found or default_profile(settings)
            edition = editions.get(profile.key())
            if edition is None:
                edition = editions[profile.key()] = render_advisory(
                    advisory, correction.new, settings, env, at, profile
                )
        else:
            edition = editions.get(("reader",)) or _reader_note(
                advisory, correction, settings, env, at
            )
            editions[("reader",)] = edition
        content = contents.get((id(edition), send_id))
        if content is None:
            content = contents[id(edition), send_id] = edition_content(edition, sender, send_id, at)
        message = personalise(content, edition.channel, recipient, send_id, sender)
        threading = threading_headers(reach.message_ids[-1], " ".join(reach.message_ids[:-1]))
        extra = headers_for(advisory) if recipient.kind is RecipientKind.EDITOR else {}
        outbound.append(
            replace(
                message,
                message_id=make_msgid(
                    f"syndicate.correction.c{correction.id}.r{recipient.id}", sender.domain
                ),
                headers=(*message.headers, *{**threading, **extra}.items()),
                delivery_id=recipient.id,
                label=f"c{correction.id}-",
            )
        )
    if not outbound:
        return advisory, []
    try:
        with runtime.transport() as transport:
            answers = transport.send_messages(outbound)
    except TransportError as exc:
        raise SyndicateError(f"correction {correction.id} not sent: {exc}") from exc
    by_id = {m.delivery_id: m for m in outbound}
    return advisory, [
        Result(by_id[a.delivery_id].recipient, by_id[a.delivery_id].message_id, a.state, a.detail)
        for a in answers
    ]


def _notify_readers(settings: Settings, correction: Correction) -> bool:
    return (
        settings.channels.newsletter.corrections == "notice"
        and correction.action is CorrectionAction.CORRECT
    )


def _reader_note(
    advisory: Advisory, correction: Correction, settings: Settings, env: Environment, at: datetime
) -> Edition:
    """A few lines and a link for readers: what changed, never the post again."""
    from syndicate.render.column import default_profile
    from syndicate.render.email import post_context

    post = correction.new
    context = post_context(post, settings)
    context.update(
        sent_day=day_name(advisory.sent_at, at, default_profile(settings)),
        changes=advisory.changes,
        note=advisory.note,
    )
    assert post.id is not None
    return Edition(
        post_id=post.id,
        channel=Channel.NEWSLETTER,
        subject=f"Correction: {post.title}",
        html=env.get_template("email/correction_notice.html.j2").render(context),
        text=env.get_template("email/correction_notice.txt.j2").render(context),
    )
