"""Entrance: SendGrid Inbound Parse, `POST /webhooks/sendgrid/inbound` (multipart/form-data).

With "POST the raw, full MIME message" on, the message is in the form field `email`; otherwise
SendGrid sends parsed fields (`headers`, `text`, `html`, `envelope`, …) and the message is
rebuilt from them. 200 means stored (or refused and recorded: a retry would not help); a
transient problem answers 503 so SendGrid retries (it does for up to three days).

Only SendGrid may post: the URL it calls carries HTTP basic auth whose password is the secret in
`$<web.inbound_parse_secret_env>` (any user name). Without it: 401 before a byte of the body is
read; with no secret configured: 503 (SendGrid keeps the mail and retries).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import json
import logging
import os
from email import policy
from email.message import EmailMessage
from email.parser import HeaderParser
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from syndicate.inbound.pipeline import process
from syndicate.settings import Settings
from syndicate.web.guard import BodyTooLarge

if TYPE_CHECKING:
    from syndicate.runtime import Runtime

log = logging.getLogger(__name__)

PATH = "/webhooks/sendgrid/inbound"
# Headers the rebuilt message must not copy from SendGrid's `headers` field: the body is new.
_BODY_HEADERS = {"content-type", "content-transfer-encoding", "mime-version"}
# SendGrid itself refuses inbound mail over 30 MB; parts up to that are read so the pipeline can
# refuse a message above max_message_bytes politely and record it.
SENDGRID_MAX_MESSAGE = 30 * 1024 * 1024
FORM_OVERHEAD = 1024 * 1024  # the other fields: headers, envelope, charsets, SPF …
MAX_FIELDS = 100
MAX_FILES = 100  # parsed mode: attachmentN (spooled to disk past 1 MB each)


def max_part_bytes(settings: Settings) -> int:
    return max(settings.inbound.max_message_bytes + 1, SENDGRID_MAX_MESSAGE)


def max_post_bytes(settings: Settings) -> int:
    """The whole post, all fields and files together (web.py bounds the body with it)."""
    return max_part_bytes(settings) + FORM_OVERHEAD


def authorised(request: Request, secret: str) -> bool:
    """HTTP basic auth carrying `secret` as the password; the user name is not checked."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    _, colon, password = decoded.partition(b":")
    return bool(colon) and hmac.compare_digest(password, secret.encode())


def routes(runtime: Runtime) -> list[Route]:
    """The Starlette route(s); web/app.py mounts them. The database is opened by the first
    request that needs it (a failure answers 503 and is tried again by the next)."""

    async def inbound(request: Request) -> JSONResponse:
        settings = runtime.settings
        secret = os.environ.get(settings.web.inbound_parse_secret_env, "")
        if not secret:
            log.error(
                "SendGrid Inbound Parse called but $%s is not set; answering 503 so SendGrid "
                "keeps the mail and retries",
                settings.web.inbound_parse_secret_env,
            )
            return JSONResponse({"error": "inbound parse not configured"}, 503)
        if not authorised(request, secret):
            log.warning("sendgrid inbound: refused a post without the right password")
            return JSONResponse(
                {"error": "authentication required"},
                401,
                headers={"WWW-Authenticate": 'Basic realm="inbound"', "Connection": "close"},
            )
        try:
            form = await request.form(
                max_files=MAX_FILES, max_fields=MAX_FIELDS, max_part_size=max_part_bytes(settings)
            )
        except BodyTooLarge:
            raise
        except Exception as exc:  # malformed multipart: SendGrid would send the same again
            log.warning("sendgrid inbound: unreadable form data: %s", exc)
            return JSONResponse({"error": f"unreadable multipart/form-data: {exc}"}, 400)
        try:
            raw, envelope_to = await message_from_form(form)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        try:
            # The pipeline blocks (database, spam check, forwarding over SMTP): run it in a
            # worker thread so the web app keeps answering unsubscribes meanwhile.
            outcome = await run_in_threadpool(
                process,
                runtime,
                raw,
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
    dropped = form.get("attachments")
    attachments = dropped if isinstance(dropped, str) else ""
    if attachments and attachments != "0":
        message["X-Syndicate-Attachments-Dropped"] = attachments
    return message.as_bytes(policy=policy.SMTP)
