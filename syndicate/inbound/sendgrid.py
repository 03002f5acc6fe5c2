"""Entrance: SendGrid Inbound Parse, `POST /webhooks/sendgrid/inbound` (multipart/form-data).

With "POST the raw, full MIME message" on, the message is in the form field `email`; otherwise
SendGrid sends parsed fields (`headers`, `text`, `html`, `envelope`, …) and the message is
rebuilt from them. 200 means stored (or refused and recorded: a retry would not help); a
transient problem answers 503 so SendGrid retries (it does for up to three days).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from email.parser import HeaderParser

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from syndicate import store
from syndicate.inbound.pipeline import process
from syndicate.settings import Settings

log = logging.getLogger(__name__)

PATH = "/webhooks/sendgrid/inbound"
# Headers the rebuilt message must not copy from SendGrid's `headers` field: the body is new.
_BODY_HEADERS = {"content-type", "content-transfer-encoding", "mime-version"}


@functools.cache
def _engine(url: str) -> Engine:
    """One engine (and connection pool) per database, not one per request."""
    return store.connect(url)


def routes(settings_loader: Callable[[], Settings]) -> list[Route]:
    """The Starlette route(s); web.py mounts them. `settings_loader` is called per request."""

    async def inbound(request: Request) -> JSONResponse:
        settings = settings_loader()
        limit = settings.inbound.max_message_bytes
        try:
            # Parts up to SendGrid's own 30 MB cap are read, so process() can refuse a message
            # above max_message_bytes politely and record it.
            form = await request.form(
                max_files=100, max_fields=1000, max_part_size=max(limit + 1, 40_000_000)
            )
        except Exception as exc:  # malformed multipart: SendGrid would send the same again
            log.warning("sendgrid inbound: unreadable form data: %s", exc)
            return JSONResponse({"error": f"unreadable multipart/form-data: {exc}"}, 400)
        try:
            raw, envelope_to = await message_from_form(form)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        try:
            engine = _engine(settings.database_url)
            key = store.hmac_key(engine, settings.hmac_key_from_env())
            # The pipeline blocks (database, spam check, forwarding over SMTP): run it in a
            # worker thread so the web app keeps answering unsubscribes meanwhile.
            outcome = await run_in_threadpool(
                process,
                engine,
                raw,
                settings,
                key,
                source="sendgrid",
                envelope_recipients=envelope_to,
            )
        except Exception as exc:  # database down or locked: ask SendGrid to retry later
            log.error("sendgrid inbound: could not store the message, SendGrid will retry: %s", exc)
            return JSONResponse({"error": "temporary failure, retry later"}, 503)
        return JSONResponse(
            {
                "reply": outcome.reply_id,
                "kind": outcome.kind.value,
                "state": outcome.state.value,
                "duplicate": outcome.duplicate,
            }
        )

    return [Route(PATH, inbound, methods=["POST"])]


async def _field(form: FormData, name: str) -> str | bytes | None:
    value = form.get(name)
    if isinstance(value, UploadFile):
        return await value.read()
    return value


async def message_from_form(form: FormData) -> tuple[bytes, tuple[str, ...]]:
    """The message bytes and envelope recipients from either mode's form fields."""
    envelope_to: tuple[str, ...] = ()
    envelope = await _field(form, "envelope")
    if envelope:
        try:
            data = json.loads(envelope)
            envelope_to = tuple(str(a) for a in data.get("to") or ())
        except (ValueError, AttributeError):
            log.warning("sendgrid inbound: envelope field is not JSON: %r", envelope[:200])
    raw = await _field(form, "email")
    if raw is not None:
        return (
            raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw
        ), envelope_to
    headers = await _field(form, "headers")
    if headers is None:
        raise ValueError("neither 'email' (raw mode) nor 'headers' (parsed mode) in the form")
    return _rebuild(
        form, headers, await _field(form, "text"), await _field(form, "html")
    ), envelope_to


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or ""


def _rebuild(form: FormData, headers: str | bytes, text: str | bytes | None, html) -> bytes:
    """Parsed mode: SendGrid's header block plus its decoded text and HTML as a new message.

    Starlette decodes fields as UTF-8, which is what SendGrid's `charsets` field reports for
    text and html in practice; attachments are not rebuilt (their count is noted)."""
    parsed = HeaderParser(policy=policy.default).parsestr(_text(headers))
    message = EmailMessage()
    for name, value in parsed.items():
        if name.lower() not in _BODY_HEADERS:
            with contextlib.suppress(ValueError, TypeError):  # a header we cannot re-set
                message[name] = str(value)
    plain, markup = _text(text), _text(html)
    if plain or not markup:
        message.set_content(plain)
        if markup:
            message.add_alternative(markup, subtype="html")
    else:
        message.set_content(markup, subtype="html")
    attachments = _text(form.get("attachments") if isinstance(form.get("attachments"), str) else "")
    if attachments and attachments != "0":
        message["X-Syndicate-Attachments-Dropped"] = attachments
    return message.as_bytes(policy=policy.SMTP)
