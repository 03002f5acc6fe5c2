"""A transport that accepts every message and keeps nothing: for benchmarks of everything but
the network (and memory measurements at a million recipients). It still writes every message,
so a benchmark measures the composer and the MIME writer."""

from __future__ import annotations

from collections.abc import Sequence

from syndicate.delivery.message import OutboundMessage
from syndicate.delivery.transports.base import (
    ByteTransport,
    OnResult,
    Write,
    report_all,
    written_or_failed,
)
from syndicate.models import DeliveryResult, DeliveryState


class NullTransport(ByteTransport):
    name = "null"

    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0

    def carry(
        self, messages: Sequence[OutboundMessage], write: Write, on_result: OnResult | None = None
    ) -> list[DeliveryResult]:
        results = []
        for message in messages:
            data = written_or_failed(write, message)
            if isinstance(data, DeliveryResult):
                results.append(data)
                continue
            self.messages += 1
            self.bytes += len(data)
            results.append(DeliveryResult(message.delivery_id, DeliveryState.SENT, "discarded"))
        return report_all(results, on_result)
