"""SMTP delivery over N parallel, reused connections, with STARTTLS, SSL, login and a rate limit.

Works with any provider; SendGrid's SMTP relay is host smtp.sendgrid.net, user 'apikey'.
Each connection carries up to `max_per_connection` messages, then a fresh one is opened. The
server's answer decides each message: 2xx sent, 4xx deferred (retried later with back-off), 5xx
failed. A dropped connection is reopened and the message tried once more before it is deferred.
"""

from __future__ import annotations

import contextlib
import logging
import re
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Protocol

from syndicate.delivery.message import OutboundMessage
from syndicate.delivery.transports.base import ByteTransport, OnResult, Write, written_or_failed
from syndicate.errors import TransportError
from syndicate.models import DeliveryResult, DeliveryState
from syndicate.settings import Smtp

log = logging.getLogger(__name__)

_CONNECTION_ERRORS = (smtplib.SMTPServerDisconnected, OSError)
# An address smtplib's quoteaddr would return unchanged inside <>: atoms and dots only.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")


class Throttle(Protocol):
    def acquire(self) -> None:
        """Wait until the next message may go."""


class SendThrottle:
    """At most `per_second` messages a second and `per_hour` an hour, over all connections.

    `clock` and `sleep` are injectable so tests never wait for real.
    """

    def __init__(
        self,
        per_second: float = 0.0,
        per_hour: int = 0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self.per_hour = per_hour
        self.clock, self.sleep = clock, sleep
        self.lock = threading.Lock()
        self.next_slot = 0.0
        self.hour_started: float | None = None
        self.hour_count = 0

    def acquire(self) -> None:
        if not self.interval and not self.per_hour:
            return
        with self.lock:
            now = self.clock()
            at = max(now, self.next_slot)
            if self.per_hour:
                if self.hour_started is None or at >= self.hour_started + 3600:
                    self.hour_started, self.hour_count = at, 0
                if self.hour_count >= self.per_hour:
                    at = self.hour_started + 3600
                    self.hour_started, self.hour_count = at, 0
                    log.info("hourly limit of %d messages reached; waiting", self.per_hour)
                self.hour_count += 1
            self.next_slot = at + self.interval
        if at > now:
            self.sleep(at - now)


class _Connection:
    """One SMTP session and how many messages it has carried."""

    def __init__(self, transport: SmtpTransport) -> None:
        self.transport = transport
        self.smtp: smtplib.SMTP | None = None
        self.sent = 0

    def ensure(self) -> smtplib.SMTP:
        limit = self.transport.config.max_per_connection
        if self.smtp is not None and limit and self.sent >= limit:
            self.quit()
        if self.smtp is None:
            self.smtp = self.transport.connect()
            self.sent = 0
        return self.smtp

    def drop(self) -> None:
        if self.smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.smtp.close()
            self.smtp = None

    def quit(self) -> None:
        if self.smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.smtp.quit()
            self.drop()


class SmtpTransport(ByteTransport):
    name = "smtp"

    def __init__(self, config: Smtp, password: str = "", limiter: Throttle | None = None) -> None:
        self.config = config
        self.password = password
        # In-process; delivery/throttle.py puts in the limit all workers share (PostgreSQL).
        self.limiter: Throttle = limiter or SendThrottle(
            config.rate_per_second, config.rate_per_hour
        )
        self.connections: list[_Connection] = []
        self.pool: ThreadPoolExecutor | None = None
        self.connections_opened = 0
        self._count_lock = threading.Lock()

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.config.ca_file or None)

    def connect(self) -> smtplib.SMTP:
        cfg = self.config
        try:
            if cfg.security == "ssl":
                conn: smtplib.SMTP = smtplib.SMTP_SSL(
                    cfg.host,
                    cfg.port,
                    timeout=cfg.timeout_seconds,
                    context=self.tls_context(),
                )
            else:
                conn = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_seconds)
            conn.ehlo()
            if cfg.security == "starttls":
                conn.starttls(context=self.tls_context())
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
        with self._count_lock:
            self.connections_opened += 1
        log.debug("connected to SMTP server %s:%s", cfg.host, cfg.port)
        return conn

    def open(self) -> None:
        """Open the first connection now, so a wrong host or password stops the send early."""
        if self.connections:
            return
        self.connections = [_Connection(self) for _ in range(self.config.connections)]
        try:
            self.connections[0].ensure()
        except TransportError:
            self.connections = []
            raise
        if self.config.connections > 1:
            self.pool = ThreadPoolExecutor(self.config.connections, thread_name_prefix="smtp")
        log.info(
            "SMTP %s:%s: up to %d connection(s)",
            self.config.host,
            self.config.port,
            self.config.connections,
        )

    def carry(
        self, messages: Sequence[OutboundMessage], write: Write, on_result: OnResult | None = None
    ) -> list[DeliveryResult]:
        """Each connection takes every n-th message, writing each just before it goes."""
        if not messages:
            return []
        if not self.connections:
            self.open()
        n = len(self.connections)
        if self.pool is None or len(messages) < 2:
            return self._send_share(self.connections[0], messages, write, on_result)
        futures = [
            (i, self.pool.submit(self._send_share, connection, messages[i::n], write, on_result))
            for i, connection in enumerate(self.connections)
            if messages[i::n]
        ]
        results: list[DeliveryResult | None] = [None] * len(messages)
        for i, future in futures:
            results[i::n] = future.result()
        return [r for r in results if r is not None]

    def _send_share(
        self,
        connection: _Connection,
        messages: Sequence[OutboundMessage],
        write: Write,
        on_result: OnResult | None = None,
    ) -> list[DeliveryResult]:
        results: list[DeliveryResult] = []
        down: DeliveryResult | None = None
        for message in messages:
            if down is not None:
                results.append(replace(down, delivery_id=message.delivery_id))
                continue
            data = written_or_failed(write, message)
            result = (
                data
                if isinstance(data, DeliveryResult)
                else self._send_one(connection, message, data)
            )
            if on_result is not None:
                on_result(result)
            if result.outage:
                # Connecting failed: do not wait for a timeout once per remaining message.
                down = result
            results.append(result)
        return results

    def _send_one(
        self, connection: _Connection, outbound: OutboundMessage, data: bytes
    ) -> DeliveryResult:
        delivery_id = outbound.delivery_id
        try:
            self.limiter.acquire()
        except TransportError as exc:  # the shared limit: not within the wait allowed, or a stop
            return DeliveryResult(delivery_id, DeliveryState.DEFERRED, str(exc), outage=True)
        for attempt in (1, 2):
            try:
                smtp = connection.ensure()
                send_prepared(smtp, outbound.envelope_from, outbound.recipient.email, data)
            except smtplib.SMTPRecipientsRefused as exc:
                code, text = next(iter(exc.recipients.values()))
                if code == 421:
                    connection.drop()
                return _refusal(delivery_id, code, text)
            except smtplib.SMTPSenderRefused as exc:
                # MAIL FROM refused: our sender address or the relay's rules are wrong, not
                # the reader's address. Every message would fail alike: pause the send.
                connection.drop()
                return DeliveryResult(
                    delivery_id,
                    DeliveryState.DEFERRED,
                    f"the server refused the sender {outbound.envelope_from} "
                    f"({_reply_text(exc.smtp_code, exc.smtp_error)}); check mail.bounce_address "
                    "(the envelope sender; mail.reply_address when empty) and the sender "
                    "identities your SMTP provider has verified",
                    outage=True,
                )
            except smtplib.SMTPDataError as exc:
                if 500 <= exc.smtp_code < 600:
                    # The message was refused after the recipient was accepted (content,
                    # size, policy): a failure of this message, not a bad address.
                    reason = _reply_text(exc.smtp_code, exc.smtp_error)
                    return DeliveryResult(delivery_id, DeliveryState.FAILED, reason, bounce=False)
                if exc.smtp_code == 421:
                    connection.drop()
                return _refusal(delivery_id, exc.smtp_code, exc.smtp_error)
            except smtplib.SMTPResponseException as exc:
                if exc.smtp_code == 421 or exc.smtp_code < 0:
                    connection.drop()
                return _refusal(delivery_id, exc.smtp_code, exc.smtp_error)
            except TransportError as exc:
                connection.drop()
                return DeliveryResult(
                    delivery_id, DeliveryState.DEFERRED, f"connection: {exc}", outage=True
                )
            except _CONNECTION_ERRORS as exc:
                connection.drop()
                if attempt == 1:
                    log.info("SMTP connection lost (%s); reconnecting", exc or type(exc).__name__)
                    continue
                return DeliveryResult(
                    delivery_id, DeliveryState.DEFERRED, f"connection: {exc or type(exc).__name__}"
                )
            connection.sent += 1
            return DeliveryResult(delivery_id, DeliveryState.SENT, "250 accepted")
        raise AssertionError("unreachable")

    def close(self) -> None:
        for connection in self.connections:
            connection.quit()
        self.connections = []
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None


def send_prepared(smtp: smtplib.SMTP, sender: str, recipient: str, data: bytes) -> None:
    """`smtplib.SMTP.sendmail` for one recipient, with the same errors, minus its two regular
    expressions over the whole message: bytes that are already CRLF-only need just the
    dot-stuffing, which `bytes.replace` does in C. Anything else goes through `sendmail`."""
    crlf = data.count(b"\r\n")
    if not (
        recipient.isascii() and sender.isascii() and crlf == data.count(b"\n") == data.count(b"\r")
    ):
        smtp.sendmail(sender, [recipient], data)
        return
    smtp.putcmd("mail", f"FROM:{_angle(sender)}")
    code, reply = smtp.getreply()
    if code != 250:
        _abort(smtp, code)
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    smtp.putcmd("rcpt", f"TO:{_angle(recipient)}")
    code, reply = smtp.getreply()
    if code not in (250, 251):
        _abort(smtp, code)
        raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
    smtp.putcmd("data")
    code, reply = smtp.getreply()
    if code != 354:
        _abort(smtp, code)
        raise smtplib.SMTPDataError(code, reply)
    payload = data.replace(b"\r\n.", b"\r\n..")
    if payload.startswith(b"."):
        payload = b"." + payload
    if not payload.endswith(b"\r\n"):
        payload += b"\r\n"
    smtp.send(payload + b".\r\n")
    code, reply = smtp.getreply()
    if code != 250:
        _abort(smtp, code)
        raise smtplib.SMTPDataError(code, reply)


def _angle(address: str) -> str:
    """`smtplib.quoteaddr`: the address in <>. smtp.mail() and smtp.rcpt() parse every address
    with email.utils.parseaddr: ~45 µs each, ~90 µs of the ~1.1 ms of CPU a message costs a
    worker (bench/workers.py). A plain address needs no parsing."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)


def _abort(smtp: smtplib.SMTP, code: int) -> None:
    """What sendmail does after a refusal: 421 means the server is closing; otherwise RSET."""
    if code == 421:
        smtp.close()
    else:
        with contextlib.suppress(smtplib.SMTPServerDisconnected):
            smtp.rset()


def _reply_text(code: int, text: bytes | str) -> str:
    return f"{code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"


def _refusal(delivery_id: int, code: int, text: bytes | str) -> DeliveryResult:
    detail = _reply_text(code, text)
    state = DeliveryState.FAILED if 500 <= code < 600 else DeliveryState.DEFERRED
    return DeliveryResult(delivery_id, state, detail)
