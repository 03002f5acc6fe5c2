"""`Settings`: every section of settings.toml, the folder its relative paths are read from, and
what is derived from them (the database URL, the mail domain, the secrets)."""

from __future__ import annotations

import os
from pathlib import Path
from zoneinfo import ZoneInfo

from syndicate.errors import SettingsError
from syndicate.settings.channels import Channels
from syndicate.settings.fields import Section
from syndicate.settings.inbound import Inbound
from syndicate.settings.sections import (
    MIN_SECRET_KEY_BYTES,
    Author,
    DaemonSettings,
    Database,
    Dkim,
    Feed,
    Mail,
    Paths,
    Secrets,
    Site,
    Subscribers,
)
from syndicate.settings.transport import TransportSettings
from syndicate.settings.web import DeskSettings, Web


class Settings(Section):
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
    desk: DeskSettings = DeskSettings()
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
            url = read_secret_file(self.path(self.database.url_file), "database.url_file")
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
            key = read_secret_file(self.path(self.secrets.key_file), "secrets.key_file").encode()
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


def read_secret_file(path: Path, setting: str) -> str:
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
