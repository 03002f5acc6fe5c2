"""Step bounce: delivery status notifications and the home-grown formats of common MTAs.

Anyone can write a bounce, so one counts only when it is tied to a delivery of ours: it came
back to that delivery's envelope sender (bounces+TOKEN@domain, VERP: the signed token names
the send and the recipient), or the headers it returns carry our signed Message-ID. Then it
counts for that delivery's address only. Any other bounce is recorded as unverified and never
scored.

flufl.bounce (Mailman's detectors) reads RFC 3464 DSNs and the non-standard formats; it returns
bytes addresses. Scoring follows Mailman: a permanent failure counts hard_bounce_score, a
temporary one soft_bounce_score, at most once a day; at bounce_threshold the address is
suppressed through db.recipients.mark_recipient(..., RecipientStatus.BOUNCED, reason)
(the scoring rule is inbound/bounce_score.py's).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from email import message_from_string

from flufl.bounce import all_failures

from syndicate import db, tokens
from syndicate.db import Connection
from syndicate.inbound import bounce_score
from syndicate.inbound.context import UNMATCHED, MessageContext
from syndicate.inbound.steps.identify import candidate_addresses
from syndicate.inbound.steps.parse import header, message_ids
from syndicate.models import Classification, Identity, InboundMessage, RecipientStatus, ReplyKind
from syndicate.settings import Inbound

log = logging.getLogger(__name__)

_DAEMONS = ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon")


@dataclass(frozen=True)
class Bounce:
    permanent: tuple[str, ...]
    temporary: tuple[str, ...]

    @property
    def addresses(self) -> tuple[str, ...]:
        return self.permanent + tuple(a for a in self.temporary if a not in self.permanent)

    @property
    def only_temporary(self) -> bool:
        return not self.permanent and bool(self.temporary)


def process(message: MessageContext) -> None:
    """A bounce counts only for the delivery it proves it is about; any other is unverified."""
    failed = detect(message.inbound)
    if failed is None:
        return
    conn = message.connection
    ours = delivery(conn, message.inbound, message.key, message.installation)
    if ours is None:
        message.classification = Classification(
            ReplyKind.BOUNCE,
            UNMATCHED,
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
        return
    counted = for_delivery(failed, ours.address)
    send = db.sends.get_send(conn, ours.send_id)
    message.classification = Classification(
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
    message.actions.append(score)


def score(message: MessageContext) -> None:
    """Count a verified bounce against its delivery's address (in the record's transaction)."""
    result = message.decided
    failed = Bounce((), result.addresses) if result.temporary else Bounce(result.addresses, ())
    suppressed = record(
        message.connection, failed, message.reply_id, message.settings.inbound, message.at
    )
    if suppressed:
        message.detail = f"suppressed: {', '.join(suppressed)}"


@dataclass(frozen=True)
class Delivery:
    """The delivery of ours a bounce is about, and how we know."""

    send_id: int
    recipient_id: int
    address: str
    via: str  # "verp:<where>" or "message-id"


def delivery(
    conn: Connection, inbound: InboundMessage, key: bytes, installation: str
) -> Delivery | None:
    """The delivery a bounce proves it is about, or None when nothing ties it to one."""
    for where, address in candidate_addresses(inbound):
        token = tokens.token_from_address(address)
        claim = tokens.verify(key, token, "bounce") if token else None
        if claim is not None:
            found = _delivery(conn, claim.send_id, claim.recipient_id, f"verp:{where}")
            if found is not None:
                return found
    for msgid in returned_message_ids(inbound):
        claim = tokens.verify_message_id(key, installation, msgid)
        if claim is not None:
            found = _delivery(conn, claim.send_id, claim.recipient_id, "message-id")
            if found is not None:
                return found
    return None


def _delivery(conn: Connection, send_id: int, recipient_id: int, via: str) -> Delivery | None:
    address = db.deliveries.delivery_address(conn, send_id, recipient_id)
    return Delivery(send_id, recipient_id, address.lower(), via) if address else None


def returned_message_ids(inbound: InboundMessage) -> list[str]:
    """Message-IDs of the message a report returns (message/rfc822, text/rfc822-headers)."""
    found: list[str] = []
    for part in inbound.message.walk():
        content_type = part.get_content_type()
        try:
            if content_type in ("message/rfc822", "message/global"):
                inner = part.get_payload()
                inner = inner[0] if isinstance(inner, list) and inner else inner
                if hasattr(inner, "get"):
                    found.extend(message_ids(str(inner.get("Message-ID", ""))))
            elif content_type in ("text/rfc822-headers", "message/global-headers"):
                headers = part.get_payload(decode=True)
                returned = message_from_string(
                    headers.decode("utf-8") if isinstance(headers, bytes) else ""
                )
                found.extend(message_ids(str(returned.get("Message-ID", ""))))
        except Exception as exc:  # a broken returned part proves nothing, and stops nothing
            log.info("could not read a returned part of %s: %s", inbound.message_id, exc)
    return list(dict.fromkeys(found))


def for_delivery(failed: Bounce, address: str) -> Bounce:
    """The bounce as it counts for one delivery's address: permanent unless it only reports a
    temporary failure (of that address, or of any address when it does not name that one)."""
    if address in failed.permanent:
        return Bounce((address,), ())
    if address in failed.temporary or failed.only_temporary:
        return Bounce((), (address,))
    return Bounce((address,), ())


def detect(inbound: InboundMessage) -> Bounce | None:
    """The failed addresses when the message is a bounce, else None."""
    try:
        temporary, permanent = all_failures(inbound.message)
    except Exception as exc:  # a detector tripping over broken MIME must not stop the pipeline
        log.warning("bounce detection failed on %s: %s", inbound.message_id or "a message", exc)
        temporary, permanent = frozenset(), frozenset()
    perm = _decoded(permanent)
    temp = tuple(a for a in _decoded(temporary) if a not in perm)
    if perm or temp:
        return Bounce(perm, temp)
    if _looks_like_bounce(inbound):
        return Bounce((), ())
    return None


def _decoded(found: frozenset[bytes]) -> tuple[str, ...]:
    text = (a.decode("utf-8", "replace") if isinstance(a, bytes) else str(a) for a in found)
    return tuple(sorted({a.strip().strip("<>").lower() for a in text if "@" in a}))


def _looks_like_bounce(inbound: InboundMessage) -> bool:
    """A report or a mailer-daemon message whose addresses could not be read: still a bounce."""
    content_type = inbound.message.get_content_type()
    report_type = inbound.message.get_param("report-type", "") or ""
    if content_type == "multipart/report" and str(report_type).lower() == "delivery-status":
        return True
    return inbound.sender.split("@", 1)[0] in _DAEMONS and not header(
        inbound.message, "In-Reply-To"
    )


def record(
    conn: Connection, bounce: Bounce, reply_id: int, config: Inbound, at: datetime
) -> list[str]:
    """Score each failed address; returns the addresses suppressed by this bounce."""
    suppressed = []
    for address in bounce.addresses:
        temporary = address not in bounce.permanent
        points = config.soft_bounce_score if temporary else config.hard_bounce_score
        score = bounce_score.score_bounce(
            conn,
            address,
            temporary=temporary,
            reply_id=reply_id,
            points=points,
            stale_after_days=config.bounce_stale_after_days,
            at=at,
        )
        log.info("bounce for %s (%s): score %.1f", address, "soft" if temporary else "hard", score)
        if score < config.bounce_threshold:
            continue
        for recipient in db.recipients.recipients_by_email(conn, address):
            reason = (
                f"bounce score {score:.1f} reached {config.bounce_threshold:g} (reply {reply_id})"
            )
            if recipient.active and db.recipients.mark_recipient(
                conn, recipient.id, RecipientStatus.BOUNCED, reason, at
            ):
                suppressed.append(address)
        db.bounces.mark_bounce_suppressed(conn, address)
    return list(dict.fromkeys(suppressed))
