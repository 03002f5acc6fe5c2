"""The transport base: context managers, one result per message in order, a message that cannot
be written failing alone, and SendGrid serialising a notice from the same value."""

from __future__ import annotations

from pathlib import Path

import pytest

from syndicate.delivery.message import Mailbox
from syndicate.delivery.notices import notice
from syndicate.delivery.transports.outbox import OutboxTransport
from syndicate.delivery.transports.sendgrid import request_body
from syndicate.delivery.transports.smtp import SmtpTransport
from syndicate.models import DeliveryState
from syndicate.settings import Smtp
from tests.support.delivery import note


def test_with_block_opens_and_closes_the_smtp_connection_even_on_error(smtp_server) -> None:
    controller, handler = smtp_server
    transport = SmtpTransport(Smtp(host="127.0.0.1", port=controller.port, security="none"))
    with pytest.raises(RuntimeError), transport:
        [result] = transport.send_messages([note("ann@example.org")])
        assert result.state is DeliveryState.SENT and transport.connections
        raise RuntimeError("the caller fails mid-way")
    assert transport.connections == [] and transport.pool is None  # closed by __exit__
    assert len(handler.messages) == 1


def test_a_message_that_cannot_be_written_fails_alone_and_in_order(tmp_path: Path) -> None:
    messages = [note("ann@example.org", 1), note("zoë@exämple.org", 2), note("bo@example.org", 3)]
    with OutboxTransport(tmp_path / "outbox") as transport:
        results = transport.send_messages(messages)
    assert [r.delivery_id for r in results] == [1, 2, 3]
    assert [r.state for r in results] == [
        DeliveryState.SENT,
        DeliveryState.FAILED,
        DeliveryState.SENT,
    ]
    assert results[1].detail.startswith("cannot compose a message for 'zoë@exämple.org'")
    assert results[1].bounce is False  # not the address's fault: never marked bounced
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2


def test_sendgrid_carries_a_notice_from_the_same_value() -> None:
    forward = notice(
        sender=Mailbox("Zoë via Notes", "jane@notes.example.com"),
        to=Mailbox("Jane Marlowe", "jane@example.com"),
        reply_to=Mailbox("Zoë", "zoe@example.org"),
        subject="Zoë replied",
        text="She wrote: %%UNSUBSCRIBE_URL%% (her words, not ours)\n",
        date=note("x@example.org").content.date,
        message_id="<her.reply@example.org>",
        headers=[("In-Reply-To", "<ours@notes.example.com>"), ("Auto-Submitted", "auto-forwarded")],
        label="reply",
        number=12,
    )
    body = request_body([forward], per_recipient_reply=False)
    assert body["from"] == {"email": "jane@notes.example.com", "name": "Zoë via Notes"}
    assert body["reply_to"] == {"email": "zoe@example.org", "name": "Zoë"}
    assert body["content"] == [{"type": "text/plain", "value": forward.content.text}]
    [person] = body["personalizations"]
    assert person["substitutions"] == {}  # a notice's text is never filled
    assert person["headers"] == {
        "Message-ID": "<her.reply@example.org>",
        "In-Reply-To": "<ours@notes.example.com>",
        "Auto-Submitted": "auto-forwarded",
    }
    assert person["custom_args"]["syndicate_delivery"] == "12"
