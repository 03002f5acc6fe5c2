"""The sections about who writes and where things are: site, author, feed, mail, database,
secrets, subscribers, DKIM, paths and the daemon."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from syndicate.settings.fields import (
    BaseUrl,
    EmailAddress,
    HttpUrl,
    Section,
    ZoneName,
    require_address,
)


class Site(Section):
    name: str
    url: HttpUrl
    language: str = "en"
    postal_address: str = ""


class Author(Section):
    name: str
    email: EmailAddress
    tagline: str = ""
    timezone: ZoneName = "UTC"


class Feed(Section):
    source: str
    first_run: Literal["newest", "none", "all"] = "newest"
    timeout_seconds: float = Field(default=20.0, gt=0)
    max_bytes: int = Field(default=10_000_000, gt=0)
    user_agent: str = "syndicate/0.1 (+https://github.com/syndicate)"


class Database(Section):
    url: str = "sqlite:///syndicate.db"
    # A file holding the URL (a password in it stays out of settings.toml): when set, every
    # entrance reads it, whatever its environment.
    url_file: str = ""


def _require_plain_address(value: str) -> str:
    address = require_address(value)
    if "+" in address.split("@", 1)[0]:
        raise ValueError("must not contain '+': syndicate adds '+TOKEN' itself")
    return address


# An address syndicate sends from: it appends '+TOKEN' to the local part itself.
SenderAddress = Annotated[str, AfterValidator(_require_plain_address)]


class Mail(Section):
    from_address: SenderAddress
    reply_address: SenderAddress
    base_url: BaseUrl
    list_id: str = ""
    # Envelope sender of every delivery, as bounces+TOKEN@domain (VERP); "" = reply_address.
    bounce_address: Annotated[
        str, AfterValidator(lambda v: _require_plain_address(v) if v else v)
    ] = ""


# Tokens are HMAC-SHA256; a key shorter than its 32-byte output adds guessable weakness.
MIN_SECRET_KEY_BYTES = 32


class Secrets(Section):
    hmac_key_env: str = "SYNDICATE_SECRET_KEY"
    # A file holding the token key: when set, every entrance (daemon, web app, MTA pipe) reads
    # it, whatever its environment, and the environment variable is ignored.
    key_file: str = ""


class DaemonSettings(Section):
    """`syndicate run`: how often it looks for work and how it guards the database."""

    poll_minutes: float = Field(default=15, gt=0)
    inbox_minutes: float = Field(default=5, gt=0)
    heartbeat_seconds: float = Field(default=30, gt=0)
    # The lock of a daemon that missed this many heartbeats is taken over (it crashed).
    stale_after_missed: int = Field(default=3, ge=2)
    misfire_grace_minutes: float = Field(default=60, gt=0)


class Subscribers(Section):
    readers: str = "subscribers/readers.csv"
    editors: str = "subscribers/editors.csv"


class Dkim(Section):
    """DKIM signing of every outgoing message; on when selector, domain and a key are set."""

    selector: str = ""
    domain: str = ""
    private_key_path: str = ""
    private_key_env: str = "SYNDICATE_DKIM_PRIVATE_KEY"

    @property
    def configured(self) -> bool:
        return bool(self.selector and self.domain)


class Paths(Section):
    templates: str = "templates"
