"""SendGrid Web API v3 (`POST /v3/mail/send`): one request carries up to 1,000 recipients.

The edition's subject, text and HTML go once per request; each recipient is a personalization
with its name and address, substitutions for the per-recipient parts (name, links, tokens),
its own headers (Message-ID, List-Unsubscribe …) and `custom_args` naming the send, recipient
and delivery, which SendGrid's event webhook hands back.

Reply-To cannot be set per personalization (the API only has a message-level `reply_to` /
`reply_to_list`, and `Reply-To` is a reserved header in `personalizations[].headers`). So
`reply_to = "shared"` (default) sets one send-level reply address (`replies+TOKEN` naming the
send, no recipient) and inbound matching identifies the reader by the reply's From; `reply_to =
"per_recipient"` keeps the exact per-recipient address by sending one request per recipient.
"""

from __future__ import annotations

import base64
import html
import json
import logging
from collections.abc import Sequence
from typing import Any

from python_http_client import exceptions as http_errors
from sendgrid import SendGridAPIClient

from syndicate.delivery.message import Content, OutboundMessage
from syndicate.delivery.transports.base import OnResult, Transport
from syndicate.errors import TransportError
from syndicate.headers import one_line
from syndicate.models import DeliveryResult, DeliveryState
from syndicate.render import placeholders as ph
from syndicate.settings import Sendgrid

log = logging.getLogger(__name__)

MAX_PERSONALIZATIONS = 1000
HTML_SUFFIX = "H%%"  # %%NAME%% in HTML becomes %%NAMEH%% (its value HTML-escaped)


def html_key(placeholder: str) -> str:
    return placeholder[:-2] + HTML_SUFFIX


class SendgridTransport(Transport):
    name = "sendgrid"

    def __init__(self, config: Sendgrid, api_key: str) -> None:
        self.config = config
        self.api_key = api_key
        self.client: SendGridAPIClient | None = None
        self.requests = 0

    def open(self) -> None:
        if not self.api_key:
            raise TransportError(
                f"no SendGrid API key: set the environment variable ${self.config.api_key_env} "
                "(transport.sendgrid.api_key_env) to a key with the Mail Send permission"
            )
        self.client = SendGridAPIClient(self.api_key, host=self.config.host)
        self.client.client.timeout = self.config.timeout_seconds

    def close(self) -> None:
        self.client = None

    def send_messages(
        self, messages: Sequence[OutboundMessage], on_result: OnResult | None = None
    ) -> list[DeliveryResult]:
        """One request per group; each request's answer is reported (`on_result`) as soon as it
        arrives, before the next request goes."""
        if self.client is None:
            self.open()
        results: dict[int, DeliveryResult] = {}
        for group in self._requests(messages):
            for result in self._post(group):
                results[result.delivery_id] = result
                if on_result is not None:
                    on_result(result)
        return [results[m.delivery_id] for m in messages]

    def _requests(self, messages: Sequence[OutboundMessage]) -> list[list[OutboundMessage]]:
        """Messages of the same content together, at most 1,000 (or 1) per request."""
        size = 1 if self.config.reply_to == "per_recipient" else MAX_PERSONALIZATIONS
        size = min(size, self.config.batch_size)
        by_content: dict[int, list[OutboundMessage]] = {}
        for message in messages:
            by_content.setdefault(id(message.content), []).append(message)
        return [
            group[i : i + size] for group in by_content.values() for i in range(0, len(group), size)
        ]

    def _post(self, group: list[OutboundMessage]) -> list[DeliveryResult]:
        assert self.client is not None
        body = request_body(group, per_recipient_reply=self.config.reply_to == "per_recipient")
        self.requests += 1
        try:
            response = self.client.client.mail.send.post(request_body=body)
        except http_errors.HTTPError as exc:
            return _refused(group, exc.status_code, _error_text(exc.body), self.config)
        except OSError as exc:  # connection refused, reset, timeout (URLError is an OSError)
            return _all(group, DeliveryState.DEFERRED, f"connection: {exc}", outage=True)
        message_id = dict(response.headers or {}).get("X-Message-Id", "")
        return _all(group, DeliveryState.SENT, f"{response.status_code} accepted {message_id}")


def request_body(group: list[OutboundMessage], *, per_recipient_reply: bool) -> dict[str, Any]:
    """One request for messages that share one Content: it goes once, each recipient is a
    personalization. SendGrid fills the placeholders from each one's substitutions."""
    first = group[0]
    content = first.content
    text, html_text = content.text, content.html
    if content.personal:
        for placeholder in ph.ALL:
            html_text = html_text.replace(placeholder, html_key(placeholder))
    sender_name = one_line(content.sender.name)
    reply_to = {"email": content.shared_reply_to or content.sender.address, "name": sender_name}
    if (per_recipient_reply or not content.shared_reply_to) and first.reply_to is not None:
        reply_to = {"email": first.reply_to.address, "name": one_line(first.reply_to.name)}
    body: dict[str, Any] = {
        "from": {"email": content.sender.address, "name": sender_name},
        "reply_to": reply_to,
        "subject": one_line(content.subject),
        # A notice may have no HTML part; SendGrid refuses empty content.
        "content": [
            {"type": kind, "value": value}
            for kind, value in (("text/plain", text), ("text/html", html_text))
            if value
        ],
        "personalizations": [_personalization(m) for m in group],
    }
    attachments = _attachments(content)
    if attachments:
        body["attachments"] = attachments
    return body


def _personalization(message: OutboundMessage) -> dict[str, Any]:
    to: dict[str, str] = {"email": message.recipient.email}
    name = one_line(message.recipient.name)
    if name:
        to["name"] = name
    substitutions = {}
    if message.content.personal:
        for placeholder, value in message.values.items():
            substitutions[placeholder] = value
            substitutions[html_key(placeholder)] = html.escape(value, quote=True)
    return {
        "to": [to],
        "substitutions": substitutions,
        "headers": {field: one_line(value) for field, value in message.all_headers()},
        "custom_args": {
            "syndicate_send": str(message.send_id),
            "syndicate_recipient": str(message.recipient.id),
            "syndicate_delivery": str(message.delivery_id),
        },
    }


def _attachments(content: Content) -> list[dict[str, str]]:
    return [
        {
            "content": base64.b64encode(a.data).decode("ascii"),
            "filename": a.filename,
            "type": a.content_type.split(";", 1)[0].strip(),
            "disposition": "attachment",
        }
        for a in content.attachments
    ]


def _all(
    group: list[OutboundMessage], state: DeliveryState, detail: str, *, outage: bool = False
) -> list[DeliveryResult]:
    return [DeliveryResult(m.delivery_id, state, detail, outage=outage) for m in group]


def _refused(
    group: list[OutboundMessage], status: int, text: str, config: Sendgrid
) -> list[DeliveryResult]:
    detail = f"SendGrid API {status}: {text}"
    if status == 429 or status >= 500:
        log.warning("%s; %d message(s) deferred", detail, len(group))
        return _all(group, DeliveryState.DEFERRED, detail, outage=True)
    if status in (401, 403):
        log.error("%s; check the key in $%s", detail, config.api_key_env)
        return _all(
            group, DeliveryState.DEFERRED, f"{detail} (check ${config.api_key_env})", outage=True
        )
    # 400, 413 …: the request as a whole was refused; not the addresses' fault.
    log.error("%s; %d message(s) failed", detail, len(group))
    return [
        DeliveryResult(m.delivery_id, DeliveryState.FAILED, detail, bounce=False) for m in group
    ]


def _error_text(body: bytes | str | None) -> str:
    """SendGrid's `{"errors": [{"message": …, "field": …}]}` as one line."""
    if not body:
        return "no details"
    raw = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
    try:
        errors = json.loads(raw).get("errors", [])
        return (
            "; ".join(f"{e.get('field') or 'request'}: {e.get('message', '')}" for e in errors)
            or raw[:300]
        )
    except (ValueError, AttributeError):
        return raw[:300]
