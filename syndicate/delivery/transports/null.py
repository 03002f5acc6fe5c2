"""A transport that accepts every message and keeps nothing: for benchmarks of everything but
the network (and memory measurements at a million recipients)."""

from __future__ import annotations

from syndicate.models import DeliveryResult, DeliveryState, OutboundMessage


class NullTransport:
    name = "null"
    needs_bytes = True

    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0

    def open(self) -> None:
        pass

    def send_batch(self, messages: list[OutboundMessage]) -> list[DeliveryResult]:
        self.messages += len(messages)
        self.bytes += sum(len(m.data) for m in messages)
        return [DeliveryResult(m.delivery_id, DeliveryState.SENT, "discarded") for m in messages]

    def close(self) -> None:
        pass
