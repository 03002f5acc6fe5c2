"""The SMTP transport's own DATA path: bytes arrive exactly as composed (dot-stuffing undone)."""

from __future__ import annotations

from syndicate.delivery.transports.smtp import SmtpTransport
from syndicate.models import DeliveryState
from syndicate.settings import Smtp
from tests.support.delivery import exactly


def _send(port: int, payloads: list[bytes]) -> list[DeliveryState]:
    transport = SmtpTransport(Smtp(host="127.0.0.1", port=port, security="none", connections=1))
    with transport:
        results = transport.carry(*exactly(payloads))
    return [r.state for r in results]


def test_lines_starting_with_dots_survive(smtp_server) -> None:
    controller, handler = smtp_server
    crlf = b"Subject: dots\r\n\r\n.\r\n.hidden\r\n..two\r\nend . \r\n.last"
    bare_lf = b"Subject: lf\n\n.one\nline\r\n"  # not CRLF-only: smtplib's sendmail stuffs it
    assert _send(controller.port, [crlf, bare_lf]) == [DeliveryState.SENT] * 2
    first, second = (m.data for m in handler.messages)
    assert first == crlf + b"\r\n"
    # (aiosmtpd only undoes dot-stuffing after CRLF, so the bare-LF line keeps its extra dot.)
    assert second == bare_lf.replace(b"\n.one", b"\n..one")


def test_refusals_keep_the_connection_usable(smtp_server) -> None:
    controller, handler = smtp_server
    handler.refuse["r2@example.org"] = "550 5.1.1 No such user"
    handler.refuse["r3@example.org"] = "452 4.2.2 Mailbox full"
    body = b"Subject: x\r\n\r\nhello\r\n"
    states = _send(controller.port, [body] * 4)
    assert states == [
        DeliveryState.SENT,
        DeliveryState.FAILED,
        DeliveryState.DEFERRED,
        DeliveryState.SENT,
    ]
    assert [m.rcpt_tos for m in handler.messages] == [["r1@example.org"], ["r4@example.org"]]
    assert len(handler.sessions) == 1
