"""Entrance for an MTA pipe or alias: one message on stdin, the exit status tells the MTA.

sysexits: 0 stored (or recognised as already stored), 75 EX_TEMPFAIL on a transient problem so
the MTA keeps the message and retries, 65 EX_DATAERR when a message is refused (too large): the
MTA then returns our one-line explanation to the sender, and the headers are recorded.
"""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine

from syndicate.inbound.pipeline import Outcome, process
from syndicate.settings import Settings

log = logging.getLogger(__name__)

EX_OK = 0
EX_DATAERR = 65
EX_TEMPFAIL = 75


def receive_bytes(
    engine: Engine,
    raw: bytes,
    settings: Settings,
    key: bytes,
    envelope_recipients: tuple[str, ...] = (),
) -> tuple[int, Outcome]:
    """File one message; returns the exit status for the MTA and the outcome."""
    outcome = process(
        engine, raw, settings, key, source="stdin", envelope_recipients=envelope_recipients
    )
    # Only a message refused for its size is bounced; one we could not read is kept whole for
    # the author (exit 0), since a bounce would tell its sender it was lost.
    return (EX_DATAERR if outcome.too_large else EX_OK), outcome
