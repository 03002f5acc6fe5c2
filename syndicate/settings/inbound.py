"""`[inbound]`: where replies come from (IMAP, Maildir), how they are judged, and WordPress."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from syndicate.settings.fields import Port, Section


class Imap(Section):
    host: str = ""
    port: Port = 993
    security: Literal["ssl", "starttls", "none"] = "ssl"
    username: str = ""
    password_env: str = "SYNDICATE_IMAP_PASSWORD"
    folder: str = "INBOX"
    processed_folder: str = "Processed"
    timeout_seconds: float = Field(default=30.0, gt=0)


class WordPress(Section):
    url: str = ""
    username: str = ""
    password_env: str = "SYNDICATE_WORDPRESS_PASSWORD"


class Inbound(Section):
    imap: Imap = Imap()
    maildir: str = ""
    maildir_processed_folder: str = "processed"
    max_message_bytes: int = Field(default=10_000_000, gt=0)
    # The Unix socket `syndicate run` takes mail on by LMTP (relative to settings.toml); "" = off.
    # syndicate/inbound/sources/handover.py reads these three with tomllib: same defaults.
    lmtp_socket: str = "syndicate.lmtp"
    lmtp_socket_mode: int = Field(default=0o600, ge=0, le=0o777)
    lmtp_timeout_seconds: float = Field(default=30.0, gt=0)
    forward_to_author: bool = True
    confirm_unsubscribe: bool = True
    hard_bounce_score: float = Field(default=1.0, ge=0)
    soft_bounce_score: float = Field(default=0.5, ge=0)
    bounce_threshold: float = Field(default=3.0, gt=0)
    bounce_stale_after_days: int = Field(default=7, gt=0)
    spam_check: Literal["off", "spamc", "spamassassin"] = "off"
    spam_command: list[str] = Field(default=[])
    wordpress: WordPress = WordPress()
    # RFC 8601: the authserv-id of your own MX's Authentication-Results; "" = trust none.
    trusted_authserv_id: str = ""
    approval_max_age_days: float = Field(default=7.0, gt=0)
