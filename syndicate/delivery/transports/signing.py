"""DKIM signing as a wrapper around a byte transport: what it writes is signed, then carried.

Signing here, the last step before the wire, covers deliveries and notices (forwards,
previews, confirmations) alike, and nothing can change the bytes after the signature. API
transports that rebuild the message (SendGrid) sign with the provider's own DKIM.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from syndicate.delivery.message import OutboundMessage
from syndicate.delivery.transports.base import ByteTransport, OnResult, Write
from syndicate.models import DeliveryResult


class SigningTransport(ByteTransport):
    def __init__(self, inner: ByteTransport, sign: Callable[[bytes], bytes]) -> None:
        self.inner, self.sign = inner, sign
        self.name = inner.name

    def write(self, message: OutboundMessage) -> bytes:
        return self.sign(self.inner.write(message))

    def carry(
        self, messages: Sequence[OutboundMessage], write: Write, on_result: OnResult | None = None
    ) -> list[DeliveryResult]:
        return self.inner.carry(messages, write, on_result)

    def open(self) -> None:
        self.inner.open()

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        # Counters and settings of the wrapped transport (connections_opened, folder …).
        return getattr(self.inner, name)
