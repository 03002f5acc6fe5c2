"""Entrance: a Maildir folder (what Postfix, Exim or Dovecot deliver into). Each stored message is
moved to a sub-folder (inbound.maildir_processed_folder) so it is never processed twice; a
message that hit a transient problem stays where it is for the next poll."""

from __future__ import annotations

import logging
import mailbox
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syndicate.inbound.context import Outcome
from syndicate.inbound.pipeline import process

if TYPE_CHECKING:
    from syndicate.runtime import Runtime

log = logging.getLogger(__name__)


class _PrivateMaildir(mailbox.Maildir):
    """A Maildir whose new messages are readable by their owner only.

    `mailbox` creates message files 0666 less the umask and takes no mode; the hook is its one
    file-creating method, and the mode is narrowed while the file is still empty.
    """

    def _create_tmp(self) -> Any:
        handle = super()._create_tmp()  # type: ignore[misc]
        os.fchmod(handle.fileno(), 0o600)
        return handle


def poll(runtime: Runtime, path: Path) -> list[Outcome]:
    settings = runtime.settings
    box = mailbox.Maildir(path, factory=None, create=False)
    processed_name = settings.inbound.maildir_processed_folder
    if processed_name not in box.list_folders():
        box.add_folder(processed_name)  # its folders are made 0700
    processed = _PrivateMaildir(Path(path) / f".{processed_name}", factory=None, create=False)
    outcomes = []
    for message_key in sorted(box.keys()):
        with box.get_file(message_key) as handle:
            raw = handle.read()
        try:
            outcome = process(runtime, raw, source="maildir")
        except Exception as exc:
            log.error("maildir %s: message %s left for the next poll: %s", path, message_key, exc)
            continue
        processed.add(raw)  # the bytes as they are: parsing them again could fail (deep MIME)
        box.remove(message_key)
        outcomes.append(outcome)
    return outcomes
