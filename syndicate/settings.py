"""Load and validate settings.toml into one typed Settings object.

Every section forbids unknown keys so a typo fails loudly instead of being ignored. Secrets never
live in the file: they are read from the environment variables the file names.
"""

from __future__ import annotations

import os
import string
import tomllib
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from syndicate.errors import SettingsError, SyndicateError

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
    # A file holding the URL (a password in it stays out of settings.toml): when set, every
    # entrance reads it, whatever its environment.
    url_file: str = ""


class Mail(_Section):
    from_address: str
    reply_address: str
    base_url: str
    list_id: str = ""
    # Envelope sender of every delivery, as bounces+TOKEN@domain (VERP); "" = reply_address.
    bounce_address: str = ""

    @field_validator("from_address", "reply_address", "bounce_address")
    @classmethod
    def _email(cls, value: str, info: ValidationInfo) -> str:
        if info.field_name == "bounce_address" and not value:
            return value
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


class TransportSettings(_Section):
    kind: Literal["outbox", "smtp", "sendgrid"] = "outbox"
    outbox: Outbox = Outbox()
    smtp: Smtp = Smtp()
    sendgrid: Sendgrid = Sendgrid()
    retry: Retry = Retry()

    @property
    def batch_size(self) -> int:
        """Messages claimed and recorded together (a crash repeats at most one batch)."""
        return self.sendgrid.batch_size if self.kind == "sendgrid" else self.smtp.batch_size


# Tokens are HMAC-SHA256; a key shorter than its 32-byte output adds guessable weakness.
MIN_SECRET_KEY_BYTES = 32


class Secrets(_Section):
    hmac_key_env: str = "SYNDICATE_SECRET_KEY"
    # A file holding the token key: when set, every entrance (daemon, web app, MTA pipe) reads
    # it, whatever its environment, and the environment variable is ignored.
    key_file: str = ""


class Newsletter(_Section):
    enabled: bool = True
    subject: str = "{title}"
    preheader_words: int = Field(default=30, ge=0)
    # Gmail clips HTML over ~102 KB; a longer edition is cut at a paragraph with a link.
    max_html_bytes: int = Field(default=95_000, ge=10_000)

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        return _require_fields(value, {"title", "site"})

    # When readers get a new post: see syndicate.scheduling.timeparse.POLICY_HELP.
    policy: str = "immediately"
    # No reader edition leaves before the column's embargo (channels.column.embargo or
    # `syndicate schedule --embargo`).
    respect_embargo: bool = True
    # A sent correction of the column also sends readers of the post a short note ("notice").
    corrections: Literal["off", "notice"] = "off"

    @field_validator("policy")
    @classmethod
    def _policy(cls, value: str) -> str:
        return _require_policy(value, allow_digest=True)


class ColumnSettings(_Section):
    enabled: bool = True
    subject: str = "Column: {title}"
    end_mark: str = "-30-"
    release: str = "upon receipt"
    copyright: str = "© {year} {author}. Distributed by {site}."

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        return _require_fields(value, {"title", "site"})

    @field_validator("copyright")
    @classmethod
    def _copyright(cls, value: str) -> str:
        return _require_fields(value, {"year", "author", "site"})

    # Editor defaults for a column left empty in subscribers/editors.csv.
    quotes: Literal["curly", "straight"] = "curly"
    links: bool = False
    formats: list[Literal["txt", "docx", "html", "nitf"]] = ["txt"]
    # Words in a slug derived from the permalink or title (JOB-NOT-WORK/).
    slug_words: int = Field(default=3, ge=1, le=8)
    # Folder of per-post notes: <permalink-slug>.toml with slug, alternate_headlines, note.
    notes_dir: str = "columns"
    # How a send's embargo time is printed: "EMBARGOED UNTIL: …" or "FOR RELEASE: …".
    embargo_wording: Literal["embargoed", "for release"] = "embargoed"
    # When editors get a new column: see syndicate.scheduling.timeparse.POLICY_HELP (no digest).
    policy: str = "immediately"
    # Default embargo for each new column, read in the author's zone from the column's send
    # time, e.g. "saturday 00:01" or "+2d"; empty for none.
    embargo: str = ""
    # An edit of a column editors already have (syndicate.corrections): "ask" the author,
    # send an advisory "auto"matically, or "off"; edits changing fewer words are ignored.
    corrections: Literal["ask", "auto", "off"] = "ask"
    corrections_min_words: int = Field(default=1, ge=1)

    @field_validator("policy")
    @classmethod
    def _policy(cls, value: str) -> str:
        return _require_policy(value, allow_digest=False)

    @field_validator("embargo")
    @classmethod
    def _embargo(cls, value: str) -> str:
        return _require_time_rule(value)


class Channels(_Section):
    newsletter: Newsletter = Newsletter()
    column: ColumnSettings = ColumnSettings()


class DaemonSettings(_Section):
    """`syndicate run`: how often it looks for work and how it guards the database."""

    poll_minutes: float = Field(default=15, gt=0)
    inbox_minutes: float = Field(default=5, gt=0)
    heartbeat_seconds: float = Field(default=30, gt=0)
    # The lock of a daemon that missed this many heartbeats is taken over (it crashed).
    stale_after_missed: int = Field(default=3, ge=2)
    misfire_grace_minutes: float = Field(default=60, gt=0)


class Subscribers(_Section):
    readers: str = "subscribers/readers.csv"
    editors: str = "subscribers/editors.csv"


class Dkim(_Section):
    """DKIM signing of every outgoing message; on when selector, domain and a key are set."""

    selector: str = ""
    domain: str = ""
    private_key_path: str = ""
    private_key_env: str = "SYNDICATE_DKIM_PRIVATE_KEY"

    @property
    def configured(self) -> bool:
        return bool(self.selector and self.domain)


class Web(_Section):
    """`syndicate serve`: the subscribe form, confirmation, unsubscribe and provider webhooks."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
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


class Desk(_Section):
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


class Paths(_Section):
    templates: str = "templates"


class Imap(_Section):
    host: str = ""
    port: int = Field(default=993, gt=0, lt=65536)
    security: Literal["ssl", "starttls", "none"] = "ssl"
    username: str = ""
    password_env: str = "SYNDICATE_IMAP_PASSWORD"
    folder: str = "INBOX"
    processed_folder: str = "Processed"
    timeout_seconds: float = Field(default=30.0, gt=0)


class WordPress(_Section):
    url: str = ""
    username: str = ""
    password_env: str = "SYNDICATE_WORDPRESS_PASSWORD"


class Inbound(_Section):
    imap: Imap = Imap()
    maildir: str = ""
    maildir_processed_folder: str = "processed"
    max_message_bytes: int = Field(default=10_000_000, gt=0)
    forward_to_author: bool = True
    confirm_unsubscribe: bool = True
    hard_bounce_score: float = Field(default=1.0, ge=0)
    soft_bounce_score: float = Field(default=0.5, ge=0)
    bounce_threshold: float = Field(default=3.0, gt=0)
    bounce_stale_after_days: int = Field(default=7, gt=0)
    spam_check: Literal["off", "spamc", "spamassassin"] = "off"
    spam_command: list[str] = []
    wordpress: WordPress = WordPress()
    # RFC 8601: the authserv-id of your own MX's Authentication-Results; "" = trust none.
    trusted_authserv_id: str = ""
    approval_max_age_days: float = Field(default=7.0, gt=0)


class Settings(_Section):
    site: Site
    author: Author
    feed: Feed
    mail: Mail
    database: Database = Database()
    transport: TransportSettings = TransportSettings()
    secrets: Secrets = Secrets()
    channels: Channels = Channels()
    subscribers: Subscribers = Subscribers()
    web: Web = Web()
    desk: Desk = Desk()
    paths: Paths = Paths()
    dkim: Dkim = Dkim()
    inbound: Inbound = Inbound()
    daemon: DaemonSettings = DaemonSettings()
    # Set by load(): the folder relative paths in the file are resolved against.
    base_dir: Path = Path(".")

    def path(self, relative: str) -> Path:
        """A path from the settings file, resolved against the file's folder."""
        candidate = Path(relative).expanduser()
        return candidate if candidate.is_absolute() else self.base_dir / candidate

    @property
    def database_url(self) -> str:
        if self.database.url_file:
            url = _read_secret_file(self.path(self.database.url_file), "database.url_file")
        else:
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
        """The token key set for this installation: the key file's, else the environment's
        (None: the key generated once and kept in the database).

        A key short enough to guess would let anyone forge unsubscribe links and reply tokens.
        """
        if self.secrets.key_file:
            key = _read_secret_file(self.path(self.secrets.key_file), "secrets.key_file").encode()
            where = str(self.path(self.secrets.key_file))
        else:
            value = os.environ.get(self.secrets.hmac_key_env, "")
            if not value:
                return None
            key, where = value.encode(), self.secrets.hmac_key_env
        if len(key) < MIN_SECRET_KEY_BYTES:
            raise SettingsError(
                f"{where}: the secret key is {len(key)} bytes, it must be at "
                f"least {MIN_SECRET_KEY_BYTES} (make one with: python3 -c "
                "'import secrets; print(secrets.token_hex(32))')"
            )
        return key


def _read_secret_file(path: Path, setting: str) -> str:
    """A one-line secret from a file others cannot read; every problem names the file."""
    try:
        mode = path.stat().st_mode
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise SettingsError(f"{path}: {setting} names a file that does not exist") from None
    except PermissionError:
        raise SettingsError(
            f"{path}: {setting} is not readable by this user ({_user()}); make it readable "
            "by the user every entrance runs as (chown it to that user, chmod 600)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: {setting} cannot be read: {exc}") from None
    if mode & 0o004:
        raise SettingsError(
            f"{path}: {setting} is readable by every user on this machine; chmod o-rwx it"
        )
    if not value or "\n" in value:
        raise SettingsError(f"{path}: {setting} must hold exactly one non-empty line")
    return value


def _user() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"uid {os.getuid()}"


def _require_fields(template: str, allowed: set[str]) -> str:
    """A `{name}` template may only name what syndicate fills in; checked at load, not at send."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(
            f"not a valid template ({exc}); write a literal brace as {{{{ or }}}}"
        ) from None
    unknown = sorted(n for n in names if n not in allowed)
    if unknown:
        choices = ", ".join("{" + n + "}" for n in sorted(allowed))
        raise ValueError(f"unknown placeholder {{{unknown[0]}}}: use {choices}")
    return template


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


def _require_policy(value: str, *, allow_digest: bool) -> str:
    from syndicate.scheduling.policies import parse_policy

    try:
        policy = parse_policy(value)
    except SyndicateError as exc:
        raise ValueError(str(exc)) from None
    if policy.kind == "digest" and not allow_digest:
        raise ValueError(
            "a digest is for readers only; editors get each column on its own "
            "(use 'immediately', 'at HH:MM', 'cron: …' or 'manual')"
        )
    return value


def _require_time_rule(value: str) -> str:
    if not value.strip():
        return value
    from syndicate.scheduling.timeparse import check_embargo_rule

    try:
        check_embargo_rule(value)
    except SyndicateError as exc:
        raise ValueError(str(exc)) from None
    return value


def packaged(name: str) -> Path:
    """A file or folder shipped with syndicate: templates, settings.toml, the example feed.

    An installed wheel carries them in `syndicate/_skeleton/` (copied there by setup.py); a
    checkout (editable install) reads them where they live in the source tree.
    """
    shipped = Path(__file__).resolve().parent / "_skeleton" / name
    return shipped if shipped.exists() else Path(__file__).resolve().parent.parent / name


def read_text(path: Path, what: str = "settings file") -> str:
    """A UTF-8 text file (a byte-order mark is accepted); any other encoding is one clear line."""
    if path.is_dir():
        raise SettingsError(f"{path}: is a folder; give the path of the {what} itself")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SettingsError(
            f"{path}: {what} not found (pass --config PATH, run from the project folder, or "
            "make one with 'syndicate init FOLDER')"
        ) from None
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read the {what}: {exc.strerror}") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data[:4096]:
        raise SettingsError(
            f"{path}: the {what} is saved as UTF-16; save it as UTF-8 (TOML files are UTF-8)"
        )
    try:
        return data.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SettingsError(
            f"{path}: line {line}: the {what} is not UTF-8 (Latin-1 or Windows-1252?); "
            "save it as UTF-8 (TOML files are UTF-8)"
        ) from None


def load(path: Path = DEFAULT_CONFIG) -> Settings:
    """Read, parse and validate a settings file; every problem names the file and the key."""
    path = Path(path)
    try:
        raw = tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    raw.pop("base_dir", None)
    try:
        settings = Settings(**raw, base_dir=path.resolve().parent)
    except ValidationError as exc:
        raise SettingsError(_describe(path, exc)) from None
    settings.hmac_key_from_env()  # a weak key is refused at start, not at the first send
    return settings


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
