"""The base every transport extends, in the manner of Django's mail backends.

    with make_transport(settings) as transport:
        results = transport.send_messages(messages)

`open` connects (raising TransportError when that is impossible), `close` lets go (safe twice),
and `send_messages` gives one `DeliveryResult` per message, in order, never raising for one bad
recipient. Each backend serialises what it needs: a `ByteTransport` asks the one MIME writer
(`delivery.mime.as_bytes`, DKIM-signed by `SigningTransport` when configured); an API backend
builds its own request from the value.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Self

from syndicate.delivery import mime
from syndicate.delivery.message import OutboundMessage
from syndicate.models import DeliveryResult, DeliveryState

# Called with each result the moment the server answers (before the batch returns), so the
# caller can journal what was accepted; see syndicate.delivery.journal.
OnResult = Callable[[DeliveryResult], None]

# A byte transport's message and the exact bytes it carries.
Written = tuple[OutboundMessage, bytes]


class Transport(ABC):
    name: str

    def open(self) -> None:  # noqa: B027 (a backend with nothing to open keeps this)
        """Connect or prepare; raise TransportError when that is impossible."""

    def close(self) -> None:  # noqa: B027 (a backend with nothing to release keeps this)
        """Release connections; safe to call twice."""

    @abstractmethod
    def send_messages(
        self, messages: Sequence[OutboundMessage], on_result: OnResult | None = None
    ) -> list[DeliveryResult]:
        """Send each message; one result per message, in order. `on_result` hears each result
        as soon as it is known (as the server answers, for transports that talk to one)."""

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class ByteTransport(Transport):
    """A transport that carries finished bytes (outbox, SMTP, null): it writes each message
    with `write` and hands the bytes to `send_written`."""

    def write(self, message: OutboundMessage) -> bytes:
        return mime.as_bytes(message)

    @abstractmethod
    def send_written(
        self, written: Sequence[Written], on_result: OnResult | None = None
    ) -> list[DeliveryResult]:
        """Carry each message's bytes; one result per item, in order."""

    def send_messages(
        self, messages: Sequence[OutboundMessage], on_result: OnResult | None = None
    ) -> list[DeliveryResult]:
        results: dict[int, DeliveryResult] = {}
        written: list[Written] = []
        for message in messages:
            try:
                written.append((message, self.write(message)))
            except (UnicodeError, ValueError) as exc:  # e.g. an address that is not ASCII
                results[id(message)] = unwritable(message, exc)
                if on_result is not None:
                    on_result(results[id(message)])
        for (message, _), result in zip(
            written, self.send_written(written, on_result), strict=True
        ):
            results[id(message)] = result
        return [results[id(m)] for m in messages]


def unwritable(message: OutboundMessage, exc: Exception) -> DeliveryResult:
    """A message that cannot be written fails alone, and not by the address's fault."""
    detail = f"cannot compose a message for {message.recipient.email!r}: {exc}"
    return DeliveryResult(message.delivery_id, DeliveryState.FAILED, detail, bounce=False)


def report_all(results: list[DeliveryResult], on_result: OnResult | None) -> list[DeliveryResult]:
    """For transports that know every answer at once (a file write): report each, return all."""
    if on_result is not None:
        for result in results:
            on_result(result)
    return results
