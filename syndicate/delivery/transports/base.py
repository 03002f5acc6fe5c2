"""The one small interface every transport implements: open, send a batch, close."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from syndicate.models import DeliveryResult, OutboundMessage

# Called with each result the moment the server answers (before the batch returns), so the
# caller can journal what was accepted; see syndicate.delivery.journal.
OnResult = Callable[[DeliveryResult], None]


class Transport(Protocol):
    name: str
    # True when the transport sends `OutboundMessage.data` (SMTP, outbox); False when it
    # rebuilds the message from its parts (an API such as SendGrid's).
    needs_bytes: bool

    def open(self) -> None:
        """Connect or prepare; raise TransportError when that is impossible."""

    def send_batch(self, messages: list[OutboundMessage]) -> list[DeliveryResult]:
        """Send each message; one result per message, in order, never raising for one bad
        recipient.

        Transports that talk to a server (SMTP, SendGrid) also set `reports_each_answer =
        True` and accept `on_result: OnResult`, called as each answer arrives."""

    def close(self) -> None:
        """Release connections; safe to call twice."""


def send_reporting(
    transport: Transport, messages: list[OutboundMessage], on_result: OnResult
) -> list[DeliveryResult]:
    """`send_batch` with `on_result` called once per message: as each answer arrives when the
    transport can say, otherwise when the batch returns (an outbox write is idempotent)."""
    if getattr(transport, "reports_each_answer", False):
        return transport.send_batch(messages, on_result=on_result)  # type: ignore[call-arg]
    results = transport.send_batch(messages)
    for result in results:
        on_result(result)
    return results
