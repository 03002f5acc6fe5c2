"""A transport that accepts every message and keeps nothing: for benchmarks of everything but
the network (and memory measurements at a million recipients). It still writes every message,
so a benchmark measures the composer and the MIME writer."""

from __future__ import annotations

from collections.abc import Sequence

from syndicate.delivery.message import OutboundMessage
from syndicate.delivery.transports.base import ByteTransport, OnResult, Write, one_by_one
from syndicate.models import DeliveryResult, DeliveryState


class NullTransport(ByteTransport):
    name = "null"

    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0

    def carry(
        self, messages: Sequence[OutboundMessage], write: Write, on_result: OnResult | None = None
    ) -> list[DeliveryResult]:
        return one_by_one(messages, write, self._discard, on_result)

    def _discard(self, message: OutboundMessage, data: bytes) -> DeliveryResult:
        self.messages += 1
        self.bytes += len(data)
        return DeliveryResult(message.delivery_id, DeliveryState.SENT, "discarded")
