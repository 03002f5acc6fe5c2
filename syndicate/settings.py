"""Load and validate settings.toml into one typed Settings object.

Every section forbids unknown keys so a typo fails loudly instead of being ignored. Secrets never
live in the file: they are read from the environment variables the file names.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from syndicate.errors import SettingsError

DEFAULT_CONFIG = Path("settings.toml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Site(_Section):
    name: str
    url: str
    language: str = "en"
    postal_address: str = ""

    @field_validator("url")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        return _require_http_url(value)


class Author(_Section):
    name: str
    email: str
    tagline: str = ""
    timezone: str = "UTC"

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return _require_address(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _require_zone(value)


class Feed(_Section):
    source: str
    first_run: Literal["newest", "none", "all"] = "newest"
    timeout_seconds: float = Field(default=20.0, gt=0)
    max_bytes: int = Field(default=10_000_000, gt=0)
    user_agent: str = "syndicate/0.1 (+https://github.com/syndicate)"


class Database(_Section):
    url: str = "sqlite:///syndicate.db"


class Mail(_Section):
    from_address: str
    reply_address: str
    base_url: str
    list_id: str = ""

    @field_validator("from_address", "reply_address")
    @classmethod
    def _email(cls, value: str) -> str:
        address = _require_address(value)
        if "+" in address.split("@", 1)[0]:
            raise ValueError("must not contain '+': syndicate adds '+TOKEN' itself")
        return address

    @field_validator("base_url")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        return _require_http_url(value).rstrip("/")


class Outbox(_Section):
    path: str = "outbox"


class Smtp(_Section):
    host: str = "localhost"
    port: int = Field(default=587, gt=0, lt=65536)
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


class Sendgrid(_Section):
    api_key_env: str = "SENDGRID_API_KEY"
    host: str = "https://api.sendgrid.com"
    batch_size: int = Field(default=1000, gt=0, le=1000)
    timeout_seconds: float = Field(default=30.0, gt=0)
    reply_to: Literal["shared", "per_recipient"] = "shared"

    @field_validator("host")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        return _require_http_url(value).rstrip("/")


class Retry(_Section):
    first_delay_seconds: float = Field(default=60.0, gt=0)
    max_delay_seconds: float = Field(default=3600.0, gt=0)
    max_attempts: int = Field(default=10, gt=0)
    wait_seconds: float = Field(default=900.0, ge=0)


class Transport(_Section):
    kind: Literal["outbox", "smtp", "sendgrid"] = "outbox"
    outbox: Outbox = Outbox()
    smtp: Smtp = Smtp()
    sendgrid: Sendgrid = Sendgrid()
    retry: Retry = Retry()

    @property
    def batch_size(self) -> int:
        """Messages claimed and recorded together (a crash repeats at most one batch)."""
        return self.sendgrid.batch_size if self.kind == "sendgrid" else self.smtp.batch_size


class Secrets(_Section):
    hmac_key_env: str = "SYNDICATE_SECRET_KEY"


class Newsletter(_Section):
    enabled: bool = True
    subject: str = "{title}"
    preheader_words: int = Field(default=30, ge=0)


class Column(_Section):
    enabled: bool = True
    subject: str = "Column: {title}"
    end_mark: str = "-30-"
    release: str = "upon receipt"
    copyright: str = "© {year} {author}. Distributed by {site}."


class Channels(_Section):
    newsletter: Newsletter = Newsletter()
    column: Column = Column()


class Subscribers(_Section):
    readers: str = "subscribers/readers.csv"
    editors: str = "subscribers/editors.csv"


class Paths(_Section):
    templates: str = "templates"


class Settings(_Section):
    site: Site
    author: Author
    feed: Feed
    mail: Mail
    database: Database = Database()
    transport: Transport = Transport()
    secrets: Secrets = Secrets()
    channels: Channels = Channels()
    subscribers: Subscribers = Subscribers()
    paths: Paths = Paths()
    # Set by load(): the folder relative paths in the file are resolved against.
    base_dir: Path = Path(".")

    def path(self, relative: str) -> Path:
        """A path from the settings file, resolved against the file's folder."""
        candidate = Path(relative).expanduser()
        return candidate if candidate.is_absolute() else self.base_dir / candidate

    @property
    def database_url(self) -> str:
        url = os.environ.get("SYNDICATE_DATABASE_URL") or self.database.url
        prefix = "sqlite:///"
        if (
            url.startswith(prefix)
            and not url.startswith(prefix + "/")
            and url != prefix + ":memory:"
        ):
            return prefix + str(self.path(url[len(prefix) :]))
        return url

    @property
    def mail_domain(self) -> str:
        return self.mail.reply_address.rsplit("@", 1)[1]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.author.timezone)

    def smtp_password(self) -> str:
        return os.environ.get(self.transport.smtp.password_env, "")

    def sendgrid_api_key(self) -> str:
        return os.environ.get(self.transport.sendgrid.api_key_env, "")

    def hmac_key_from_env(self) -> bytes | None:
        value = os.environ.get(self.secrets.hmac_key_env, "")
        return value.encode() if value else None


def _require_address(value: str) -> str:
    local, sep, domain = value.partition("@")
    if not sep or not local or "." not in domain or any(c.isspace() for c in value):
        raise ValueError(f"expected an email address like name@example.com, got {value!r}")
    return value


def _require_http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"expected an absolute http(s) URL, got {value!r}")
    return value


def _require_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"expected an IANA time zone like 'America/Toronto', got {value!r}"
        ) from exc
    return value


def load(path: Path = DEFAULT_CONFIG) -> Settings:
    """Read, parse and validate a settings file; every problem names the file and the key."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(
            f"{path}: settings file not found (pass --config PATH or run from the project folder)"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    raw.pop("base_dir", None)
    try:
        return Settings(**raw, base_dir=path.resolve().parent)
    except ValidationError as exc:
        raise SettingsError(_describe(path, exc)) from None


def _describe(path: Path, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling against the documented settings.toml)"
        elif error["type"] == "missing":
            message = "required key is missing"
        elif "input" in error and error["type"] not in ("value_error",):
            message = f"{message}, got {error['input']!r}"
        problems.append(f"{key}: {message}")
    return f"{path}: " + "; ".join(problems)
