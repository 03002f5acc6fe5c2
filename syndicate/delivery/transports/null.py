"""A transport that accepts every message and keeps nothing: for benchmarks of everything but
the network (and memory measurements at a million recipients). It still writes every message,
so a benchmark measures the composer and the MIME writer."""

from __future__ import annotations

from collections.abc import Sequence

from syndicate.delivery.transports.base import ByteTransport, OnResult, Written, report_all
from syndicate.models import DeliveryResult, DeliveryState


class NullTransport(ByteTransport):
    name = "null"

    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0

    def send_written(
        self, written: Sequence[Written], on_result: OnResult | None = None
    ) -> list[DeliveryResult]:
        self.messages += len(written)
        self.bytes += sum(len(data) for _, data in written)
        results = [
            DeliveryResult(m.delivery_id, DeliveryState.SENT, "discarded") for m, _ in written
        ]
        return report_all(results, on_result)
