"""SendGrid's signed Event Webhook: verify the signature, apply suppressions once per event.

Events name the recipient through the `custom_args` the delivery engine sends (top-level
`send_id` and `recipient_id`); when those are missing or do not match, the address decides.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader

from syndicate import db
from syndicate.db import Connection, Engine
from syndicate.models import RecipientStatus

log = logging.getLogger(__name__)

SIGNATURE_HEADER = EventWebhookHeader.SIGNATURE
TIMESTAMP_HEADER = EventWebhookHeader.TIMESTAMP
# A signed post is accepted only this close to our clock: a recorded one cannot be replayed later.
MAX_CLOCK_SKEW_SECONDS = 600

# SendGrid event → recipient status. "deferred", "delivered", "open", "click" … change nothing.
SUPPRESSING = {
    "bounce": RecipientStatus.BOUNCED,
    "dropped": RecipientStatus.BOUNCED,
    "spamreport": RecipientStatus.COMPLAINED,
    "unsubscribe": RecipientStatus.UNSUBSCRIBED,
    "group_unsubscribe": RecipientStatus.UNSUBSCRIBED,
}


@dataclass
class EventReport:
    applied: int = 0
    duplicates: int = 0
    ignored: int = 0
    unmatched: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def verify(public_key: str, body: bytes, signature: str, timestamp: str) -> bool:
    """True only for a body signed by the holder of SendGrid's key; never raises."""
    if not (public_key and signature and timestamp):
        return False
    try:
        verifier = EventWebhook(public_key.strip())
        return bool(verifier.verify_signature(body.decode("utf-8"), signature, timestamp))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        log.warning("webhook signature check failed: %s", exc)
        return False


def fresh(timestamp: str, now: float, max_skew: float = MAX_CLOCK_SKEW_SECONDS) -> bool:
    """True when the (signed) Unix timestamp is within `max_skew` seconds of `now`."""
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    return abs(now - int(timestamp)) <= max_skew


def parse_events(body: bytes) -> list[dict[str, Any]]:
    """The JSON array SendGrid posts; ValueError when the body is anything else."""
    events = json.loads(body)
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise ValueError("expected a JSON array of event objects")
    return events


def event_id(event: dict[str, Any]) -> str:
    """sg_event_id, or a digest of the event when a (test) event has none."""
    given = str(event.get("sg_event_id") or "")
    if given:
        return given[:128]
    digest = hashlib.sha256(json.dumps(event, sort_keys=True).encode()).hexdigest()
    return f"sha256:{digest[:64]}"


def _targets(conn: Connection, event: dict[str, Any]) -> list[int]:
    """Recipient ids the event is about: custom_args first, the address as fallback."""
    email = str(event.get("email") or "").strip().lower()
    rid = str(event.get("recipient_id") or "").strip()
    if rid.isdigit():
        row = db.recipients.recipient_row(conn, int(rid))
        if row is not None and (not email or row.email_key == email):
            return [row.id]
    if email:
        return [row.id for row in db.recipients.recipients_by_email(conn, email)]
    return []


def apply_events(engine: Engine, events: list[dict[str, Any]]) -> EventReport:
    """Apply suppressing events in one transaction; an event id seen before is skipped."""
    report = EventReport()
    with engine.begin() as conn:
        for event in events:
            kind = str(event.get("event") or "")
            status = SUPPRESSING.get(kind)
            # A "blocked" bounce is temporary (the receiving server refused for now).
            if status is None or (kind == "bounce" and event.get("type") == "blocked"):
                report.ignored += 1
                continue
            eid = event_id(event)
            if db.recipients.webhook_event_seen(conn, eid):
                report.duplicates += 1
                continue
            targets = _targets(conn, event)
            detail = str(event.get("reason") or event.get("status") or event.get("type") or "")
            send = str(event.get("send_id") or "")
            reason = f"sendgrid {kind}" + (f" (send {send})" if send.isdigit() else "")
            reason += f": {detail}" if detail else ""
            changed = [
                rid for rid in targets if db.recipients.mark_recipient(conn, rid, status, reason)
            ]
            outcome = f"{status}: {changed}" if targets else "no matching recipient"
            db.recipients.record_webhook_event(
                conn,
                eid,
                kind,
                str(event.get("email") or ""),
                targets[0] if targets else None,
                outcome,
            )
            if targets:
                report.applied += 1
                log.info("sendgrid %s for %s: %s", kind, event.get("email"), outcome)
            else:
                report.unmatched += 1
                log.warning("sendgrid %s for unknown address %s", kind, event.get("email"))
    return report
