"""Manual sends: a preview goes to the author, and a reply saying "approve" releases the send.

The preview's Reply-To carries an `approve` token for the send, signed with the time it was
issued (it expires after inbound.approval_max_age_days), so a reply names the send it approves
and cannot be forged. A From line proves nothing, so the reply must also be authenticated as
the author's: a valid DKIM signature of the author's domain, checked here, or an
Authentication-Results header written by the author's own MX (inbound.trusted_authserv_id)
reporting dkim=pass or dmarc=pass for it. Anything less is refused and changes nothing; the
author is emailed a confirmation of every approval.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid, parseaddr

import dkim as dkimpy
import html2text

from syndicate import db, tokens
from syndicate.db import Engine
from syndicate.db.sends import Send
from syndicate.delivery import dispatch
from syndicate.delivery.compose import compose
from syndicate.delivery.transports import make_transport, notice
from syndicate.errors import TransportError
from syndicate.models import (
    Channel,
    DeliveryState,
    Post,
    Recipient,
    RecipientKind,
    SendState,
)
from syndicate.render import make_environment, render_edition
from syndicate.scheduling import send_control
from syndicate.scheduling.timeparse import describe
from syndicate.settings import Settings

log = logging.getLogger(__name__)

APPROVE_WORDS = ("approve", "approved", "yes, approve", "ok approve")


@dataclass(frozen=True)
class ApprovalResult:
    """What became of an approval reply: `accepted` means the send is now released."""

    accepted: bool
    send_id: int | None
    reason: str


# --- the preview --------------------------------------------------------------------------------


def approve_address(
    settings: Settings, key: bytes, send_id: int, issued: datetime | None = None
) -> str:
    issued_at = int((issued or db.now()).timestamp())
    token = tokens.make(key, "approve", send_id, 0, issued_at=issued_at)
    return tokens.reply_address(settings.mail.reply_address, token)


def build_preview(engine: Engine, settings: Settings, send_id: int, key: bytes) -> EmailMessage:
    """The author's preview: instructions first, then the edition exactly as recipients get it."""
    send, post, audience = _send_post_audience(engine, send_id)
    channel = Channel(send.channel)
    env = make_environment(settings.path(settings.paths.templates))
    edition = render_edition(post, channel, settings, env, db.as_utc(send.embargo_until))
    author = Recipient(0, channel.audience, settings.author.email, settings.author.name)
    sender = dispatch.make_sender(settings, key)
    edition_message = compose(edition, author, send_id, sender, db.now())
    embargo = db.as_utc(send.embargo_until)
    lines = [
        f"A new {channel.value} is ready: “{post.title}”.",
        "",
        "Nothing goes out until you approve it. Once approved it goes to "
        + _goes_to(channel, audience, embargo, settings)
        + ".",
        "",
        "To approve, reply to this email with the word:  approve",
        f"or run:  syndicate approve {send_id}",
        f"To stop it for good:  syndicate cancel {send_id}",
        "",
        "The edition exactly as it will be sent is attached below.",
    ]
    msg = EmailMessage()
    msg["From"] = Address(settings.author.name, addr_spec=settings.mail.from_address)
    msg["To"] = Address(settings.author.name, addr_spec=settings.author.email)
    msg["Subject"] = f"Approve? {edition.subject} ({channel.value}, send {send_id})"
    msg["Date"] = format_datetime(db.now())
    msg["Message-ID"] = make_msgid(f"syndicate.approve.s{send_id}", settings.mail_domain)
    msg["Reply-To"] = approve_address(settings, key, send_id)
    msg["X-Syndicate-Approval"] = str(send_id)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content("\n".join(lines) + "\n")
    msg.add_attachment(edition_message)
    return msg


def deliver_to_author(
    settings: Settings, message: EmailMessage, send_id: int, label: str = "preview"
) -> bool:
    """Send one message to the author through the configured transport; True when accepted.

    The only place approval touches a transport, so a change of the transport interface is
    one edit here. It is labelled with the send's id (the outbox names files by it).
    """
    transport = make_transport(settings)
    author = Recipient(0, RecipientKind.READER, settings.author.email, settings.author.name)
    try:
        transport.open()
        [result] = transport.send_batch(
            [
                notice(
                    message,
                    author,
                    envelope_from=settings.mail.from_address,
                    label=label,
                    number=send_id,
                )
            ]
        )
    except TransportError as exc:
        log.error("%s to %s not sent: %s", label, settings.author.email, exc)
        return False
    finally:
        transport.close()
    if result.state is not DeliveryState.SENT:
        log.error("%s to %s not sent: %s", label, settings.author.email, result.detail)
        return False
    return True


def request_previews(engine: Engine, settings: Settings) -> int:
    """Email a preview for every manual send whose preview has not gone out; returns how many."""
    key = db.meta.hmac_key(engine, settings.hmac_key_from_env())
    with engine.connect() as conn:
        waiting = db.sends.awaiting_preview(conn)
    sent = 0
    for send in waiting:
        message = build_preview(engine, settings, send.id, key)
        if not deliver_to_author(settings, message, send.id):
            continue
        with engine.begin() as conn:
            db.sends.update_send(conn, send.id, approval_requested_at=db.now())
        log.info(
            "send %s (%s) awaits approval: preview emailed to %s",
            send.id,
            send.channel,
            settings.author.email,
        )
        sent += 1
    return sent


# --- the reply ----------------------------------------------------------------------------------


def _recipient_addresses(message: EmailMessage) -> list[str]:
    headers: list[str] = []
    for name in ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To"):
        headers.extend(str(v) for v in message.get_all(name, []))
    return [address for _, address in getaddresses(headers) if address]


def _first_words(message: EmailMessage) -> str:
    """The reply's own first line, ignoring quoted text and blank lines."""
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return ""
    text = body.get_content()
    if body.get_content_subtype() == "html":
        text = html2text.html2text(text)
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(">"):
            return " ".join(stripped.lower().split())
    return ""


def _fails_authentication(message: EmailMessage) -> bool:
    results = " ".join(str(v) for v in message.get_all("Authentication-Results", []))
    return bool(re.search(r"\bdmarc=fail\b", results, re.IGNORECASE))


DnsFunc = Callable[..., bytes | None]


def _aligned(domain: str, author_domain: str) -> bool:
    """Strict alignment: the very domain of the author's address (a subdomain may be run by
    someone else, so it does not count)."""
    return domain.lower().rstrip(".") == author_domain.lower().rstrip(".")


def _dkim_signed_by(raw: bytes, author_domain: str, dnsfunc: DnsFunc | None) -> str:
    """ "dkim d=DOMAIN" when a DKIM signature of the author's domain verifies, else ""."""
    checker = dkimpy.DKIM(raw)
    signatures = [v for k, v in checker.headers if k.lower() == b"dkim-signature"]
    for index, value in enumerate(signatures):
        match = re.search(rb"(?:^|;)\s*d\s*=\s*([^;\s]+)", value)
        if not match or not _aligned(match.group(1).decode("ascii", "replace"), author_domain):
            continue
        try:
            valid = (
                checker.verify(idx=index, dnsfunc=dnsfunc) if dnsfunc else checker.verify(idx=index)
            )
        except Exception as exc:  # a DNS failure or a broken signature proves nothing
            log.info("DKIM signature %d did not verify: %s", index, exc)
            valid = False
        if valid:
            return f"dkim d={match.group(1).decode('ascii', 'replace')}"
    return ""


def _trusted_results(message: EmailMessage, authserv_id: str, author_domain: str) -> str:
    """What the author's own MX reported, if it reported a pass for the author's domain.

    Only the topmost Authentication-Results header with our authserv-id counts (RFC 8601: the
    MX adds its own above what the sender wrote and removes forgeries of its id)."""
    if not authserv_id:
        return ""
    for value in message.get_all("Authentication-Results", []):
        text = " ".join(str(value).split())
        server = text.split(";", 1)[0].strip().split()[0] if text.strip() else ""
        if server.lower() != authserv_id.strip().lower():
            continue
        for method, prop in (("dkim", "header.d"), ("dkim", "header.i"), ("dmarc", "header.from")):
            for found in re.finditer(
                rf"\b{method}=pass\b[^;]*?\b{re.escape(prop)}=([^\s;]+)", text, re.IGNORECASE
            ):
                domain = found.group(1).rsplit("@", 1)[-1]
                if _aligned(domain, author_domain):
                    return f"{method}=pass by {server}"
        return ""
    return ""


def authenticated(
    message: EmailMessage, raw: bytes, settings: Settings, dnsfunc: DnsFunc | None = None
) -> str:
    """How the reply proves it is the author's ("" when it does not)."""
    author_domain = settings.author.email.rsplit("@", 1)[-1]
    return _trusted_results(
        message, settings.inbound.trusted_authserv_id, author_domain
    ) or _dkim_signed_by(raw, author_domain, dnsfunc)


def _claim(key: bytes, message: EmailMessage) -> tokens.TokenClaim | None:
    for address in _recipient_addresses(message):
        token = tokens.token_from_address(address)
        if token:
            claim = tokens.verify(key, token, "approve")
            if claim:
                return claim
    return None


def _expired(claim: tokens.TokenClaim, settings: Settings, at: datetime) -> str:
    if claim.issued_at is None:
        return "the approval token carries no issue time (made before tokens expired)"
    age = at - datetime.fromtimestamp(claim.issued_at, tz=at.tzinfo)
    limit = timedelta(days=settings.inbound.approval_max_age_days)
    if age > limit:
        return (
            f"the approval token expired ({age.days} days old; "
            f"inbound.approval_max_age_days = {settings.inbound.approval_max_age_days:g})"
        )
    return ""


def handle_approval_reply(
    engine: Engine,
    settings: Settings,
    message: EmailMessage,
    *,
    raw: bytes | None = None,
    dnsfunc: DnsFunc | None = None,
    at: datetime | None = None,
) -> ApprovalResult:
    """Approve the send a reply names, if the reply is provably the author's, carries a live
    approval token and says "approve"; then email the author what was approved.

    Called by the inbound-mail pipeline for mail addressed to an `approve` token. `raw` is the
    message as received (for DKIM); `dnsfunc` replaces DNS look-ups (tests).
    """
    at = at or db.now()
    key = db.meta.hmac_key(engine, settings.hmac_key_from_env())
    claim = _claim(key, message)
    if claim is None:
        return ApprovalResult(False, None, "no valid approval token in the recipient address")
    send_id = claim.send_id
    expired = _expired(claim, settings, at)
    if expired:
        log.warning("approval of send %s refused: %s", send_id, expired)
        return ApprovalResult(False, send_id, expired)
    sender = parseaddr(str(message.get("From", "")))[1].strip().lower()
    if sender != settings.author.email.strip().lower():
        log.warning(
            "approval of send %s refused: the reply came from %r, not the author (%s)",
            send_id,
            sender,
            settings.author.email,
        )
        return ApprovalResult(False, send_id, f"only {settings.author.email} may approve")
    if _fails_authentication(message):
        log.warning("approval of send %s refused: the reply failed DMARC", send_id)
        return ApprovalResult(False, send_id, "the reply failed sender authentication (DMARC)")
    proof = authenticated(
        message, raw if raw is not None else message.as_bytes(), settings, dnsfunc
    )
    if not proof:
        log.warning("approval of send %s refused: nothing proves the author wrote it", send_id)
        return ApprovalResult(
            False,
            send_id,
            "the reply is not authenticated as the author's (no valid DKIM signature of "
            "the author's domain, no pass from inbound.trusted_authserv_id)",
        )
    words = _first_words(message)
    if claim.recipient_id:  # a question about a correction (syndicate.corrections)
        from syndicate.corrections import control as corrections

        accepted, reason = corrections.answer(
            engine, settings, claim.recipient_id, send_id, words, proof, at
        )
        return ApprovalResult(accepted, send_id, reason)
    if not words.startswith(APPROVE_WORDS):
        return ApprovalResult(
            False, send_id, f"the reply does not say 'approve' (it starts {words[:40]!r})"
        )
    with engine.connect() as conn:
        send = db.sends.get_send(conn, send_id)
    if send is None:
        return ApprovalResult(False, send_id, "that send no longer exists")
    if send.state in (SendState.DONE.value, SendState.CANCELLED.value):
        return ApprovalResult(False, send_id, f"send {send_id} is already {send.state}")
    _, changed = send_control.approve(engine, send_id, by="reply")
    reason = f"approved by reply ({proof})" if changed else "already approved"
    log.info("send %s: %s from %s", send_id, reason, sender)
    if changed:
        confirmation = approval_confirmation(engine, settings, send_id, proof, message, at)
        if not deliver_to_author(settings, confirmation, send_id, label="approved"):
            reason += "; the confirmation email could not be sent"
    return ApprovalResult(True, send_id, reason)


def approval_confirmation(
    engine: Engine,
    settings: Settings,
    send_id: int,
    proof: str,
    reply: EmailMessage,
    at: datetime,
) -> EmailMessage:
    """The author's receipt for an approval: which send, to whom, when, and how to stop it."""
    send, post, audience = _send_post_audience(engine, send_id)
    channel = Channel(send.channel)
    embargo = db.as_utc(send.embargo_until)
    lines = [
        f"Send {send_id} is approved: the {channel.value} “{post.title}”.",
        "",
        f"It goes to {_goes_to(channel, audience, embargo, settings)}.",
        f"Approved by your reply of {format_datetime(at)} ({proof}).",
        "",
        f"If you did not approve it, stop it now:  syndicate cancel {send_id}",
    ]
    msg = EmailMessage()
    msg["From"] = Address(settings.author.name, addr_spec=settings.mail.from_address)
    msg["To"] = Address(settings.author.name, addr_spec=settings.author.email)
    msg["Subject"] = f"Approved: {post.title} ({channel.value}, send {send_id})"
    msg["Date"] = format_datetime(at)
    msg["Message-ID"] = make_msgid(f"syndicate.approved.s{send_id}", settings.mail_domain)
    if reply.get("Message-ID"):
        msg["In-Reply-To"] = str(reply["Message-ID"])
    msg["X-Syndicate-Approval"] = str(send_id)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content("\n".join(lines) + "\n")
    return msg


def _goes_to(channel: Channel, audience: dict, embargo: datetime | None, settings: Settings) -> str:
    """ "12 readers, not before Saturday …": who an approved send reaches, and from when."""
    count = audience.get(channel.audience.value, {}).get("active", 0)
    who = "readers" if channel.audience is RecipientKind.READER else "editors"
    when = f", not before {describe(embargo, settings.zone)}" if embargo else ""
    return f"{count} {who}{when}"


def _send_post_audience(
    engine: Engine, send_id: int
) -> tuple[Send, Post, dict[str, dict[str, int]]]:
    """The send, its post, and the recipient counts by kind and status."""
    with engine.connect() as conn:
        send = db.sends.get_send(conn, send_id)
        assert send is not None
        post = db.posts.get_post(conn, send.post_id)
        audience = db.recipients.count_recipients(conn)
    assert post is not None
    return send, post, audience
