"""Transports: where finished messages go (an outbox folder, an SMTP server, …)."""

from __future__ import annotations

from syndicate.settings import Settings
from syndicate.transports.base import Transport
from syndicate.transports.null import NullTransport
from syndicate.transports.outbox import OutboxTransport
from syndicate.transports.smtp import SmtpTransport

__all__ = ["NullTransport", "OutboxTransport", "SmtpTransport", "Transport", "make_transport"]


def make_transport(settings: Settings) -> Transport:
    kind = settings.transport.kind
    if kind == "sendgrid":
        # Imported here: the sendgrid package is only needed by those who use it.
        from syndicate.transports.sendgrid import SendgridTransport

        return SendgridTransport(settings.transport.sendgrid, settings.sendgrid_api_key())
    if kind == "smtp":
        smtp = settings.transport.smtp
        if smtp.ca_file:
            smtp = smtp.model_copy(update={"ca_file": str(settings.path(smtp.ca_file))})
        return SmtpTransport(smtp, settings.smtp_password())
    return OutboxTransport(settings.path(settings.transport.outbox.path))
