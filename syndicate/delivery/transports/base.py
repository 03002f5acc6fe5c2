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

from syndicate.delivery.message import OutboundMessage

# By name, not the module: a `cli.lazy` module first read from two SMTP threads at once can
# be half-loaded in one of them (LazyLoader is not thread-safe on 3.11); this loads it here.
from syndicate.delivery.mime import as_bytes
from syndicate.models import DeliveryResult, DeliveryState

# Called with each result the moment the server answers (before the batch returns), so the
# caller can journal what was accepted; see syndicate.delivery.journal.
OnResult = Callable[[DeliveryResult], None]

# How a byte transport gets a message's bytes: the one MIME writer, signed when DKIM is on.
Write = Callable[[OutboundMessage], bytes]


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
    """A transport that carries finished bytes (outbox, SMTP, null). `carry` asks `write` for
    each message's bytes as its turn comes (so an SMTP connection writes the next message while
    another waits for its server), and reports one that cannot be written (`written_or_failed`)
    without stopping the rest."""

    def write(self, message: OutboundMessage) -> bytes:
        return as_bytes(message)

    def send_messages(
        self, messages: Sequence[OutboundMessage], on_result: OnResult | None = None
    ) -> list[DeliveryResult]:
        return self.carry(messages, self.write, on_result)

    @abstractmethod
    def carry(
        self, messages: Sequence[OutboundMessage], write: Write, on_result: OnResult | None = None
    ) -> list[DeliveryResult]:
        """Write and carry each message; one result per message, in order."""


def written_or_failed(write: Write, message: OutboundMessage) -> bytes | DeliveryResult:
    """The message's bytes, or its failure when it cannot be written (an address that is not
    ASCII): that message fails alone, and not by the address's fault, so it is not bounced."""
    try:
        return write(message)
    except (UnicodeError, ValueError) as exc:
        detail = f"cannot compose a message for {message.recipient.email!r}: {exc}"
        return DeliveryResult(message.delivery_id, DeliveryState.FAILED, detail, bounce=False)


def one_by_one(
    messages: Sequence[OutboundMessage],
    write: Write,
    carry_one: Callable[[OutboundMessage, bytes], DeliveryResult],
    on_result: OnResult | None,
) -> list[DeliveryResult]:
    """`carry` for transports that know each answer at once (a file written, a message
    discarded): write, carry, and report every result when the batch is done."""
    results = []
    for message in messages:
        data = written_or_failed(write, message)
        results.append(data if isinstance(data, DeliveryResult) else carry_one(message, data))
    if on_result is not None:
        for result in results:
            on_result(result)
    return results
