"""Write each message as an .eml file in a folder: the default, for demos and previews."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from syndicate.models import DeliveryResult, DeliveryState, OutboundMessage


class OutboxTransport:
    name = "outbox"
    needs_bytes = True

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def send_batch(self, messages: list[OutboundMessage]) -> list[DeliveryResult]:
        return [self._write(message) for message in messages]

    def close(self) -> None:
        pass

    def _write(self, outbound: OutboundMessage) -> DeliveryResult:
        mailbox = re.sub(r"[^A-Za-z0-9@._-]+", "_", outbound.recipient.email)
        prefix = outbound.label or "d"
        target = self.folder / f"{prefix}{outbound.delivery_id:07d}-{mailbox}.eml"
        data = outbound.data
        # Write to a temporary name and rename, so a crash never leaves half a message.
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".eml")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            return DeliveryResult(outbound.delivery_id, DeliveryState.DEFERRED, f"outbox: {exc}")
        return DeliveryResult(outbound.delivery_id, DeliveryState.SENT, str(target))
