"""SMTP delivery over one reused connection, with STARTTLS, SSL and login from settings.

Works with any provider; SendGrid's SMTP relay is host smtp.sendgrid.net, user 'apikey'.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
import ssl
from email import policy

from syndicate.errors import TransportError
from syndicate.models import DeliveryResult, DeliveryState, OutboundMessage
from syndicate.settings import Smtp

log = logging.getLogger(__name__)


class SmtpTransport:
    name = "smtp"

    def __init__(self, config: Smtp, password: str = "") -> None:
        self.config = config
        self.password = password
        self.connection: smtplib.SMTP | None = None
        self.connections_opened = 0

    def open(self) -> None:
        if self.connection is not None:
            return
        cfg = self.config
        try:
            if cfg.security == "ssl":
                conn: smtplib.SMTP = smtplib.SMTP_SSL(
                    cfg.host,
                    cfg.port,
                    timeout=cfg.timeout_seconds,
                    context=ssl.create_default_context(),
                )
            else:
                conn = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_seconds)
            conn.ehlo()
            if cfg.security == "starttls":
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
            if cfg.username:
                conn.login(cfg.username, self.password)
        except smtplib.SMTPAuthenticationError as exc:
            raise TransportError(
                f"SMTP login as {cfg.username!r} at {cfg.host}:{cfg.port} was refused "
                f"({exc.smtp_code}); check transport.smtp.username and ${cfg.password_env}"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise TransportError(
                f"cannot connect to SMTP server {cfg.host}:{cfg.port} "
                f"(transport.smtp, security={cfg.security}): {exc}"
            ) from None
        self.connection = conn
        self.connections_opened += 1
        log.info("connected to SMTP server %s:%s", cfg.host, cfg.port)

    def send_batch(self, messages: list[OutboundMessage]) -> list[DeliveryResult]:
        return [self._send_one(message) for message in messages]

    def _send_one(self, outbound: OutboundMessage) -> DeliveryResult:
        delivery_id = outbound.delivery_id
        try:
            self.open()
            assert self.connection is not None
            data = outbound.message.as_bytes(policy=policy.SMTP)
            self.connection.sendmail(outbound.envelope_from, [outbound.recipient.email], data)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            return _refusal(delivery_id, code, text)
        except smtplib.SMTPResponseException as exc:
            if isinstance(exc, smtplib.SMTPServerDisconnected) or exc.smtp_code == 421:
                self._drop()
            return _refusal(delivery_id, exc.smtp_code, exc.smtp_error)
        except (smtplib.SMTPServerDisconnected, OSError, TransportError) as exc:
            self._drop()
            return DeliveryResult(delivery_id, DeliveryState.DEFERRED, f"connection: {exc}")
        return DeliveryResult(delivery_id, DeliveryState.SENT, "250 accepted")

    def _drop(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            finally:
                self.connection = None

    def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.connection.quit()
            self._drop()


def _refusal(delivery_id: int, code: int, text: bytes | str) -> DeliveryResult:
    detail = f"{code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"
    state = DeliveryState.FAILED if 500 <= code < 600 else DeliveryState.DEFERRED
    return DeliveryResult(delivery_id, state, detail)
