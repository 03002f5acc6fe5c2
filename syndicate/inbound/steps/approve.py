"""Step approve: the author's "approve" answer to a preview releases a manual send.

The preview (scheduling/approval.py) carries an `approve` token for the send in its Reply-To,
signed with the time it was issued (it expires after inbound.approval_max_age_days), so an
answer names the send it approves and cannot be forged. A From line proves nothing, so the
answer must also be authenticated as the author's: a valid DKIM signature of the author's
domain, checked here, or an Authentication-Results header written by the author's own MX
(inbound.trusted_authserv_id) reporting dkim=pass or dmarc=pass for it. Its first own line
(step text's words) must say "approve". Anything less is refused and changes nothing; the
author is emailed a receipt for every approval.

Approving opens its own transaction, so it happens once the answer is recorded (step forward).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING

from syndicate import db, tokens
from syndicate.corrections.rows import correction_of
from syndicate.inbound.answers import first_line, is_answer
from syndicate.inbound.context import MessageContext
from syndicate.inbound.steps import parse, text
from syndicate.inbound.steps.identify import candidate_addresses
from syndicate.models import InboundMessage, ReplyKind, SendState
from syndicate.settings import Settings

if TYPE_CHECKING:
    from syndicate.runtime import Runtime

log = logging.getLogger(__name__)

APPROVE_WORDS = ("approve", "approved", "yes, approve", "ok approve", "ok, approve")
DnsFunc = Callable[..., bytes | None]


@dataclass(frozen=True)
class ApprovalResult:
    """What became of an approval reply: `accepted` means the send is now released."""

    accepted: bool
    send_id: int | None
    reason: str


def process(message: MessageContext) -> None:
    if message.identity.purpose != "approve":
        return
    message.decide(ReplyKind.APPROVAL, f"approval token via {message.identity.via}")
    message.afterwards.append(act)


def act(message: MessageContext) -> None:
    """Once the answer is recorded: approve, if everything above holds; note what happened."""
    result = approve(message.runtime, message.inbound, message.words, at=message.at)
    message.detail = ("approved: " if result.accepted else "not approved: ") + result.reason
    with message.database.begin() as conn:
        db.replies.update_reply(conn, message.reply_id, detail=message.detail)


def handle_approval_reply(
    runtime: Runtime,
    message: EmailMessage,
    *,
    raw: bytes | None = None,
    dnsfunc: DnsFunc | None = None,
    at: datetime | None = None,
) -> ApprovalResult:
    """`approve` for an answer that did not come through the pipeline: its bytes are read by
    the pipeline's own parse and text steps. `raw` is the message as received (for DKIM);
    `dnsfunc` replaces DNS look-ups (tests)."""
    inbound = parse.parse(raw if raw is not None else message.as_bytes(), source="approval")
    words = text.own_words(inbound.message)
    return approve(runtime, inbound, words, dnsfunc=dnsfunc, at=at)


def approve(
    runtime: Runtime,
    inbound: InboundMessage,
    words: str,
    *,
    dnsfunc: DnsFunc | None = None,
    at: datetime | None = None,
) -> ApprovalResult:
    """Approve the send an answer names, if it is provably the author's, carries a live
    approval token and says "approve"; then email the author what was approved."""
    settings = runtime.settings
    at = at or runtime.now()
    claim = _claim(runtime.key, inbound)
    if claim is None:
        return ApprovalResult(False, None, "no valid approval token in the recipient address")
    send_id = claim.send_id
    expired = _expired(claim, settings, at)
    if expired:
        log.warning("approval of send %s refused: %s", send_id, expired)
        return ApprovalResult(False, send_id, expired)
    sender = next(iter(parse.addresses(inbound.message, "From")), "")
    if sender != settings.author.email.strip().lower():
        log.warning(
            "approval of send %s refused: the reply came from %r, not the author (%s)",
            send_id,
            sender,
            settings.author.email,
        )
        return ApprovalResult(False, send_id, f"only {settings.author.email} may approve")
    if _fails_authentication(inbound):
        log.warning("approval of send %s refused: the reply failed DMARC", send_id)
        return ApprovalResult(False, send_id, "the reply failed sender authentication (DMARC)")
    proof = authenticated(inbound, settings, dnsfunc)
    if not proof:
        log.warning("approval of send %s refused: nothing proves the author wrote it", send_id)
        return ApprovalResult(
            False,
            send_id,
            "the reply is not authenticated as the author's (no valid DKIM signature of "
            "the author's domain, no pass from inbound.trusted_authserv_id)",
        )
    said = first_line(words)
    correction_id = correction_of(claim.recipient_id)
    if correction_id is not None:  # the question about a correction (syndicate.corrections)
        from syndicate.corrections import control as corrections

        accepted, reason = corrections.answer(runtime, correction_id, send_id, said, proof, at)
        return ApprovalResult(accepted, send_id, reason)
    if not is_answer(said, APPROVE_WORDS):
        return ApprovalResult(
            False,
            send_id,
            f"the reply's first line is not 'approve' alone (it says {said[:60]!r})",
        )
    return _release(runtime, send_id, proof, sender, inbound, at)


def _release(
    runtime: Runtime,
    send_id: int,
    proof: str,
    sender: str,
    inbound: InboundMessage,
    at: datetime,
) -> ApprovalResult:
    # Imported here: the outgoing half (previews, receipts) loads the renderers (premailer,
    # python-docx), which every other reply an MTA pipes in never needs.
    from syndicate.scheduling import approval, send_control

    engine = runtime.engine
    with engine.connect() as conn:
        send = db.sends.get_send(conn, send_id)
    if send is None:
        return ApprovalResult(False, send_id, "that send no longer exists")
    if send.state in (SendState.DONE.value, SendState.CANCELLED.value):
        return ApprovalResult(False, send_id, f"send {send_id} is already {send.state}")
    _, changed = send_control.approve(engine, send_id, by="reply", at=at)
    reason = f"approved by reply ({proof})" if changed else "already approved"
    log.info("send %s: %s from %s", send_id, reason, sender)
    if changed:
        receipt = approval.approval_confirmation(runtime, send_id, proof, inbound.message, at)
        if not approval.deliver_to_author(runtime, receipt):
            reason += "; the confirmation email could not be sent"
    return ApprovalResult(True, send_id, reason)


def _claim(key: bytes, inbound: InboundMessage) -> tokens.TokenClaim | None:
    for _where, address in candidate_addresses(inbound):
        token = tokens.token_from_address(address)
        claim = tokens.verify(key, token, "approve") if token else None
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


def _fails_authentication(inbound: InboundMessage) -> bool:
    results = " ".join(parse.headers(inbound.message, "Authentication-Results"))
    return bool(re.search(r"\bdmarc=fail\b", results, re.IGNORECASE))


def _aligned(domain: str, author_domain: str) -> bool:
    """Strict alignment: the very domain of the author's address (a subdomain may be run by
    someone else, so it does not count)."""
    return domain.lower().rstrip(".") == author_domain.lower().rstrip(".")


def _dkim_signed_by(raw: bytes, author_domain: str, dnsfunc: DnsFunc | None) -> str:
    """ "dkim d=DOMAIN" when a DKIM signature of the author's domain verifies, else ""."""
    import dkim as dkimpy  # only an approval needs it

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


def _trusted_results(inbound: InboundMessage, authserv_id: str, author_domain: str) -> str:
    """What the author's own MX reported, if it reported a pass for the author's domain.

    Only the topmost Authentication-Results header with our authserv-id counts (RFC 8601: the
    MX adds its own above what the sender wrote and removes forgeries of its id)."""
    if not authserv_id:
        return ""
    for text_ in parse.headers(inbound.message, "Authentication-Results"):
        server = text_.split(";", 1)[0].strip().split()[0] if text_.strip() else ""
        if server.lower() != authserv_id.strip().lower():
            continue
        for method, prop in (("dkim", "header.d"), ("dkim", "header.i"), ("dmarc", "header.from")):
            for found in re.finditer(
                rf"\b{method}=pass\b[^;]*?\b{re.escape(prop)}=([^\s;]+)", text_, re.IGNORECASE
            ):
                domain = found.group(1).rsplit("@", 1)[-1]
                if _aligned(domain, author_domain):
                    return f"{method}=pass by {server}"
        return ""
    return ""


def authenticated(inbound: InboundMessage, settings: Settings, dnsfunc: DnsFunc | None) -> str:
    """How the answer proves it is the author's ("" when it does not)."""
    author_domain = settings.author.email.rsplit("@", 1)[-1]
    return _trusted_results(
        inbound, settings.inbound.trusted_authserv_id, author_domain
    ) or _dkim_signed_by(inbound.raw, author_domain, dnsfunc)
