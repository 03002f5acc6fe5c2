"""Transports: where finished messages go (an outbox folder, an SMTP server, SendGrid's API).

One file per backend, each a `base.Transport`; `make_transport` picks the configured one.
"""

from __future__ import annotations

from syndicate.delivery.dkim import signer_for
from syndicate.delivery.transports.base import ByteTransport, OnResult, Transport
from syndicate.delivery.transports.null import NullTransport
from syndicate.delivery.transports.outbox import OutboxTransport
from syndicate.delivery.transports.signing import SigningTransport
from syndicate.delivery.transports.smtp import SmtpTransport
from syndicate.settings import Settings

__all__ = [
    "ByteTransport",
    "NullTransport",
    "OnResult",
    "OutboxTransport",
    "SigningTransport",
    "SmtpTransport",
    "Transport",
    "make_transport",
]


def make_transport(settings: Settings) -> Transport:
    """The configured transport; when DKIM is set up, every message it writes is signed."""
    transport = _plain_transport(settings)
    sign = signer_for(settings)
    if sign is not None and isinstance(transport, ByteTransport):
        return SigningTransport(transport, sign)
    return transport


def _plain_transport(settings: Settings) -> Transport:
    kind = settings.transport.kind
    if kind == "sendgrid":
        # Imported here: the sendgrid package is only needed by those who use it.
        from syndicate.delivery.transports.sendgrid import SendgridTransport

        return SendgridTransport(settings.transport.sendgrid, settings.sendgrid_api_key())
    if kind == "smtp":
        smtp = settings.transport.smtp
        if smtp.ca_file:
            smtp = smtp.model_copy(update={"ca_file": str(settings.path(smtp.ca_file))})
        return SmtpTransport(smtp, settings.smtp_password())
    return OutboxTransport(settings.path(settings.transport.outbox.path))
