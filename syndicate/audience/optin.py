"""Double opt-in: a pending request, a confirmation email with an expiring signed link, activation.

The link names the pending request by id, signed with the token key and a timestamp
(itsdangerous), so it cannot be forged and stops working after `web.confirm_hours`.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from email.utils import make_msgid

import jinja2
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from syndicate import db
from syndicate.db import Engine
from syndicate.delivery import notices
from syndicate.delivery.message import Mailbox, OutboundMessage
from syndicate.delivery.transports import Transport
from syndicate.models import DeliveryState, RecipientKind
from syndicate.settings import Settings

log = logging.getLogger(__name__)

CONFIRM_SALT = "syndicate.confirm"
# Confirmation emails are not deliveries; this offset keeps their ids (and the outbox file names
# the outbox transport derives from them) clear of real delivery ids.


def serializer(key: bytes, salt: str = CONFIRM_SALT) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(key, salt=salt)


def confirm_token(key: bytes, pending_id: int, nonce: str) -> str:
    """Names the request by id and its random nonce: a database started afresh under the same
    key reuses ids, and an old link must not confirm someone else's request."""
    return serializer(key).dumps([pending_id, nonce])


@dataclass(frozen=True)
class ConfirmOutcome:
    state: str  # pending (check only) | confirmed | already | expired | invalid
    email: str = ""


def request(
    engine: Engine, kind: RecipientKind, email: str, name: str, lifetime_hours: float = 48.0
) -> tuple[int, str]:
    """Record a pending opt-in; known and unknown addresses are treated exactly alike.

    Requests whose link expired long ago are forgotten on the way, so the table stays small.
    """
    with engine.begin() as conn:
        db.recipients.forget_pending_before(conn, db.now() - timedelta(hours=2 * lifetime_hours))
        nonce = secrets.token_hex(8)
        return db.recipients.add_pending_confirmation(conn, kind, email, name, nonce), nonce


def build_message(
    settings: Settings,
    env: jinja2.Environment,
    email: str,
    name: str,
    link: str,
    *,
    kind: RecipientKind = RecipientKind.READER,
    number: int = 0,
) -> OutboundMessage:
    values = {
        "site": settings.site,
        "author": settings.author,
        "name": name,
        "email": email,
        "link": link,
        "hours": settings.web.confirm_hours,
    }
    return notices.notice(
        sender=Mailbox(settings.site.name, settings.mail.from_address),
        to=Mailbox(name, email),
        subject=f"Confirm your subscription to {settings.site.name}",
        text=env.get_template("web/confirm_email.txt.j2").render(values),
        html=env.get_template("web/confirm_email.html.j2").render(values),
        date=db.now(),
        message_id=make_msgid("syndicate.confirm", domain=settings.mail_domain),
        headers=[("Auto-Submitted", "auto-generated")],
        label="confirm",
        number=number,
        kind=kind,
    )


def send_confirmation(
    settings: Settings,
    env: jinja2.Environment,
    transport: Transport,
    key: bytes,
    pending: tuple[int, str],
    kind: RecipientKind,
    email: str,
    name: str,
) -> bool:
    """Send the confirmation email through the configured transport; True when it left."""
    pending_id, nonce = pending
    link = f"{settings.mail.base_url.rstrip('/')}/confirm/{confirm_token(key, pending_id, nonce)}"
    message = build_message(settings, env, email, name, link, kind=kind, number=pending_id)
    try:
        result = notices.send(transport, message)
    except Exception as exc:  # any transport failure: the person is told to try again
        log.error("confirmation email to %s not sent: %s", email, exc)
        return False
    if result.state is not DeliveryState.SENT:
        log.error("confirmation email to %s not sent: %s", email, result.detail)
        return False
    log.info("confirmation email sent to %s (request %d)", email, pending_id)
    return True


def _claim(key: bytes, token: str, max_age_seconds: float) -> tuple[int, str] | str:
    """The (pending id, nonce) a genuine, unexpired link names, or why not."""
    try:
        # itsdangerous annotates max_age as int, but compares it as a number: fractional hours
        # (web.confirm_hours) keep their seconds.
        claim = serializer(key).loads(token, max_age=max_age_seconds)  # type: ignore[arg-type]
    except SignatureExpired:
        return "expired"
    except BadSignature:
        return "invalid"
    if not (isinstance(claim, list) and len(claim) == 2 and isinstance(claim[0], int)):
        return "invalid"
    return claim[0], str(claim[1])


def _same(nonce: str, stored: str) -> bool:
    return hmac.compare_digest(nonce.encode(), stored.encode())


def check(engine: Engine, key: bytes, token: str, max_age_seconds: float) -> ConfirmOutcome:
    """What confirming would do (pending | already | expired | invalid); changes nothing."""
    claim = _claim(key, token, max_age_seconds)
    if isinstance(claim, str):
        return ConfirmOutcome(claim)
    with engine.connect() as conn:
        pending = db.recipients.get_pending_confirmation(conn, claim[0])
    if pending is None or not _same(claim[1], pending.nonce):
        return ConfirmOutcome("invalid")
    state = "already" if pending.confirmed_at is not None else "pending"
    return ConfirmOutcome(state, pending.email)


def confirm(engine: Engine, key: bytes, token: str, max_age_seconds: float) -> ConfirmOutcome:
    """Activate the subscription a genuine, unexpired link names; anything else changes nothing."""
    claim = _claim(key, token, max_age_seconds)
    if isinstance(claim, str):
        return ConfirmOutcome(claim)
    pending_id, nonce = claim
    with engine.begin() as conn:
        pending = db.recipients.get_pending_confirmation(conn, pending_id)
        if pending is None or not _same(nonce, pending.nonce):
            return ConfirmOutcome("invalid")
        if pending.confirmed_at is not None:
            return ConfirmOutcome("already", pending.email)
        outcome = db.recipients.confirm_subscription(
            conn, RecipientKind(pending.kind), pending.email, pending.name
        )
        db.recipients.mark_confirmed(conn, pending_id)
    log.info("%s confirmed the subscription (%s)", pending.email, outcome)
    return ConfirmOutcome("confirmed", pending.email)
