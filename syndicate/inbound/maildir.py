"""Entrance: a Maildir folder (what Postfix, Exim or Dovecot deliver into). Each stored message is
moved to a sub-folder (inbound.maildir_processed_folder) so it is never processed twice; a
message that hit a transient problem stays where it is for the next poll."""

from __future__ import annotations

import logging
import mailbox
from pathlib import Path

from sqlalchemy.engine import Engine

from syndicate.inbound.pipeline import Outcome, process
from syndicate.settings import Settings

log = logging.getLogger(__name__)


def poll(engine: Engine, path: Path, settings: Settings, key: bytes) -> list[Outcome]:
    box = mailbox.Maildir(path, factory=None, create=False)
    processed_name = settings.inbound.maildir_processed_folder
    processed = (
        box.get_folder(processed_name)
        if processed_name in box.list_folders()
        else box.add_folder(processed_name)
    )
    outcomes = []
    for message_key in sorted(box.keys()):
        with box.get_file(message_key) as handle:
            raw = handle.read()
        try:
            outcome = process(engine, raw, settings, key, source="maildir")
        except Exception as exc:
            log.error("maildir %s: message %s left for the next poll: %s", path, message_key, exc)
            continue
        processed.add(raw)  # the bytes as they are: parsing them again could fail (deep MIME)
        box.remove(message_key)
        outcomes.append(outcome)
    return outcomes
