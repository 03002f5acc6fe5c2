"""The one small interface every transport implements: open, send a batch, close."""

from __future__ import annotations

from typing import Protocol

from syndicate.models import DeliveryResult, OutboundMessage


class Transport(Protocol):
    name: str
    # True when the transport sends `OutboundMessage.data` (SMTP, outbox); False when it
    # rebuilds the message from its parts (an API such as SendGrid's).
    needs_bytes: bool

    def open(self) -> None:
        """Connect or prepare; raise TransportError when that is impossible."""

    def send_batch(self, messages: list[OutboundMessage]) -> list[DeliveryResult]:
        """Send each message; one result per message, in order, never raising for one bad
        recipient."""

    def close(self) -> None:
        """Release connections; safe to call twice."""
