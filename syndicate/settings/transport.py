"""`[transport]`: which way mail leaves (outbox folder, SMTP, SendGrid) and how it retries."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from syndicate.settings.fields import BaseUrl, Port, Section


class Outbox(Section):
    path: str = "outbox"


class Smtp(Section):
    host: str = "localhost"
    port: Port = 587
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str = ""
    password_env: str = "SYNDICATE_SMTP_PASSWORD"
    timeout_seconds: float = Field(default=30.0, gt=0)
    batch_size: int = Field(default=100, gt=0)
    ca_file: str = ""
    connections: int = Field(default=2, gt=0, le=64)
    max_per_connection: int = Field(default=1000, ge=0)
    rate_per_second: float = Field(default=0.0, ge=0)
    rate_per_hour: int = Field(default=0, ge=0)


class Sendgrid(Section):
    api_key_env: str = "SENDGRID_API_KEY"
    host: BaseUrl = "https://api.sendgrid.com"
    batch_size: int = Field(default=1000, gt=0, le=1000)
    timeout_seconds: float = Field(default=30.0, gt=0)
    reply_to: Literal["shared", "per_recipient"] = "shared"


class Retry(Section):
    first_delay_seconds: float = Field(default=60.0, gt=0)
    max_delay_seconds: float = Field(default=3600.0, gt=0)
    max_attempts: int = Field(default=10, gt=0)
    wait_seconds: float = Field(default=900.0, ge=0)


class TransportSettings(Section):
    kind: Literal["outbox", "smtp", "sendgrid"] = "outbox"
    outbox: Outbox = Outbox()
    smtp: Smtp = Smtp()
    sendgrid: Sendgrid = Sendgrid()
    retry: Retry = Retry()

    @property
    def batch_size(self) -> int:
        """Messages claimed and recorded together (a crash repeats at most one batch)."""
        return self.sendgrid.batch_size if self.kind == "sendgrid" else self.smtp.batch_size
