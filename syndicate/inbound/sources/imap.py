"""Entrance: an IMAP mailbox, polled with imapclient.

New messages are those with a UID above the last one stored for this (server, user, folder)
while UIDVALIDITY is unchanged. Each stored message is moved to inbound.imap.processed_folder
(created when missing), or flagged \\Seen when that is empty. A message already recorded (same
Message-ID) is not filed again, so a crash between storing and moving repeats nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import ssl
from typing import TYPE_CHECKING

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from syndicate import db
from syndicate.errors import SyndicateError
from syndicate.inbound.context import Outcome
from syndicate.inbound.pipeline import process
from syndicate.settings import Imap

if TYPE_CHECKING:
    from syndicate.runtime import Runtime

log = logging.getLogger(__name__)


class ImapError(SyndicateError):
    """The IMAP server could not be reached or refused the login: nothing was changed."""


def connect(config: Imap) -> IMAPClient:
    try:
        client = IMAPClient(
            config.host,
            port=config.port,
            ssl=config.security == "ssl",
            ssl_context=ssl.create_default_context() if config.security != "none" else None,
            timeout=config.timeout_seconds,
        )
        if config.security == "starttls":
            client.starttls(ssl.create_default_context())
        client.login(config.username, os.environ.get(config.password_env, ""))
    except (OSError, IMAPClientError) as exc:
        raise ImapError(
            f"IMAP {config.username}@{config.host}:{config.port} ({config.security}): {exc}; "
            f"check [inbound.imap] and ${config.password_env}"
        ) from None
    return client


def poll(runtime: Runtime) -> list[Outcome]:
    engine, settings = runtime.engine, runtime.settings
    config = settings.inbound.imap
    mailbox = f"{config.username}@{config.host}:{config.port}/{config.folder}"
    client = connect(config)
    outcomes: list[Outcome] = []
    try:
        status = client.select_folder(config.folder)
        uidvalidity = int(status[b"UIDVALIDITY"])
        with engine.connect() as conn:
            saved = db.inbox_state.get_imap_state(conn, mailbox)
        last_uid = saved[1] if saved and saved[0] == uidvalidity else 0
        if saved and saved[0] != uidvalidity:
            log.warning(
                "%s: UIDVALIDITY changed; rescanning (Message-IDs prevent repeats)", mailbox
            )
        uids = sorted(uid for uid in client.search(["UID", f"{last_uid + 1}:*"]) if uid > last_uid)
        if uids and config.processed_folder and not client.folder_exists(config.processed_folder):
            client.create_folder(config.processed_folder)
        for uid in uids:
            fetched = client.fetch([uid], ["BODY.PEEK[]"]).get(uid, {})
            raw = fetched.get(b"BODY[]")
            if raw is None:
                log.warning("%s: UID %s vanished before it could be read", mailbox, uid)
                continue
            try:
                outcome = process(runtime, raw, source="imap")
            except Exception as exc:
                log.error("%s: UID %s left for the next poll: %s", mailbox, uid, exc)
                break  # keep order: do not move past a message that is not stored
            if config.processed_folder:
                client.move([uid], config.processed_folder)
            else:
                client.add_flags([uid], [b"\\Seen"])
            with engine.begin() as conn:
                db.inbox_state.save_imap_state(conn, mailbox, uidvalidity, uid)
            outcomes.append(outcome)
    finally:
        with contextlib.suppress(OSError, IMAPClientError):
            client.logout()
    return outcomes
