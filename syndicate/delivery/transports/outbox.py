"""Write each message as an .eml file in a folder: the default, for demos and previews.

The folder is the owner's alone (0700, files 0600): the messages carry every reader's signed
unsubscribe and reply tokens.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from syndicate.delivery.message import OutboundMessage
from syndicate.delivery.transports.base import ByteTransport, OnResult, Write, one_by_one
from syndicate.models import DeliveryResult, DeliveryState

log = logging.getLogger(__name__)

# A file name is at most 255 bytes on common file systems; an address may be 254 characters.
_MAX_MAILBOX_CHARACTERS = 64
_TEMPORARY_PREFIX = ".tmp-"


class OutboxTransport(ByteTransport):
    name = "outbox"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def open(self) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.folder.stat().st_mode & 0o077:
            self.folder.chmod(0o700)
        self._remove_abandoned_temporaries()

    def carry(
        self, messages: Sequence[OutboundMessage], write: Write, on_result: OnResult | None = None
    ) -> list[DeliveryResult]:
        return one_by_one(messages, write, self._file, on_result)

    def _file(self, outbound: OutboundMessage, data: bytes) -> DeliveryResult:
        prefix = outbound.label or "d"
        mailbox = file_name_part(outbound.recipient.email)
        target = self.folder / f"{prefix}{outbound.delivery_id:07d}-{mailbox}.eml"
        # Write to a temporary name and rename, so a crash never leaves half a message. mkstemp
        # creates the file 0600; the pid in its name tells a later start whose it was.
        fd, tmp = tempfile.mkstemp(
            dir=self.folder, prefix=f"{_TEMPORARY_PREFIX}{os.getpid()}-", suffix=".eml"
        )
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            return DeliveryResult(outbound.delivery_id, DeliveryState.DEFERRED, f"outbox: {exc}")
        return DeliveryResult(outbound.delivery_id, DeliveryState.SENT, str(target))

    def _remove_abandoned_temporaries(self) -> None:
        """Half-written messages of a process that was killed (kill -9, power loss)."""
        for leftover in self.folder.glob(f"{_TEMPORARY_PREFIX}*.eml"):
            writer = leftover.name.removeprefix(_TEMPORARY_PREFIX).split("-", 1)[0]
            if writer.isdigit() and _running(int(writer)):
                continue  # another process (or this one) may be writing it right now
            leftover.unlink(missing_ok=True)
            log.info("outbox: removed %s, left half-written by a stopped process", leftover.name)


def file_name_part(address: str) -> str:
    """The address as a short, safe piece of a file name; a long one is cut and hashed."""
    safe = re.sub(r"[^A-Za-z0-9@._-]+", "_", address)
    if len(safe) <= _MAX_MAILBOX_CHARACTERS:
        return safe
    digest = hashlib.sha256(address.encode()).hexdigest()[:12]
    return f"{safe[: _MAX_MAILBOX_CHARACTERS - 13]}~{digest}"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    return True
