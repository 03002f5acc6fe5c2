"""`[web]` (`syndicate serve`: subscribe pages and webhooks) and `[desk]` (the author's desk)."""

from __future__ import annotations

from pydantic import Field, field_validator

from syndicate.settings.fields import Port, Section


class Web(Section):
    """`syndicate serve`: the subscribe form, confirmation, unsubscribe and provider webhooks."""

    host: str = "127.0.0.1"
    port: Port = 8000
    confirm_hours: float = Field(default=48.0, gt=0)
    rate_limit: int = Field(default=5, ge=1)
    rate_window_seconds: float = Field(default=600.0, gt=0)
    # Clients the rate limiter remembers; the least recently seen is forgotten first.
    rate_limit_clients: int = Field(default=10_000, ge=100)
    # Reverse proxies in front of `serve` that each append the address they saw to
    # X-Forwarded-For; the client is the entry this many hops from the right. 0: the peer.
    trusted_proxies: int = Field(default=0, ge=0, le=16)
    # Largest request body of any page or form; the SendGrid event webhook has its own.
    max_body_bytes: int = Field(default=65_536, ge=4096)
    max_event_bytes: int = Field(default=5_000_000, ge=65_536)
    # Requests `serve` handles at once (idle connections do not count); one past it gets 503.
    max_requests: int = Field(default=100, ge=8)
    # Seconds a client has to send a whole request head (else its connection is closed) and,
    # after it, its whole body (else 408).
    head_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    body_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    sendgrid_webhook_key_env: str = "SYNDICATE_SENDGRID_WEBHOOK_KEY"
    inbound_parse_secret_env: str = "SYNDICATE_INBOUND_PARSE_SECRET"
    # Replaced by trusted_proxies (it trusted the left-most X-Forwarded-For entry, which the
    # client writes); `false` is still accepted, `true` is refused with a pointer.
    trust_forwarded_for: bool | None = None

    @field_validator("trust_forwarded_for")
    @classmethod
    def _replaced(cls, value: bool | None) -> bool | None:
        if value:
            raise ValueError(
                "replaced by web.trusted_proxies = N, the number of reverse proxies in front of "
                "`syndicate serve` (usually 1); remove trust_forwarded_for"
            )
        return value


class DeskSettings(Section):
    """The author's desk in the browser (syndicate/desk), served by `syndicate serve`."""

    path: str = "/desk"
    # The address the author opens the desk at, when not mail.base_url's (a POST from any other
    # origin is refused).
    origin: str = ""
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    login_attempts: int = Field(default=5, ge=1)
    login_window_seconds: float = Field(default=900.0, gt=0)
    # Days a browser the author logged in from stays "known" (past the account-wide lock).
    known_device_days: float = Field(default=90.0, gt=0, le=3650)
    max_upload_bytes: int = Field(default=5_000_000, ge=65_536)

    @field_validator("path")
    @classmethod
    def _path_shape(cls, value: str) -> str:
        if not value.startswith("/") or value.endswith("/") or len(value) < 2 or " " in value:
            raise ValueError("must start with '/', not end with one, and hold no spaces: '/desk'")
        return value

    @field_validator("origin")
    @classmethod
    def _origin_shape(cls, value: str) -> str:
        if value and (not value.startswith(("http://", "https://")) or value.count("/") != 2):
            raise ValueError("must be scheme and host only, like 'https://notes.example.com'")
        return value
