"""Who claims deliveries: a name for each sending run that says where it runs, and whether the
run a name belongs to can still finish its claim.

Any number of runs may send the same send at once (`syndicate send` on several machines, on
PostgreSQL): each claims batches under its own name with a lease (db.deliveries.claim_batch),
and a claim whose run is gone returns to the queue (db.deliveries.requeue).
"""

from __future__ import annotations

import logging
import os
import secrets
from datetime import timedelta

from syndicate import db, machine
from syndicate.db import Engine
from syndicate.delivery.journal import Journal
from syndicate.models import DeliveryState

log = logging.getLogger(__name__)

# How long a claimed batch stays its worker's by the database's clock. A batch is sent and
# recorded in seconds; a worker on another machine that died holds its rows this long at most.
LEASE = timedelta(minutes=10)
# A send is finished when none of its rows is in these states: another worker's rows in flight
# ('sending') are that worker's to record, and it then finishes the send.
UNFINISHED = (DeliveryState.PENDING, DeliveryState.DEFERRED, DeliveryState.SENDING)


def claimer_name() -> str:
    """machine:pid:nonce (syndicate.machine), at most 64 characters; a new nonce for every run
    in the process."""
    return f"{machine.name()}:{os.getpid()}:{secrets.token_hex(4)}"


def gone(name: str) -> bool:
    """True when `name` is a run of this machine that can no longer finish its claim: its
    process no longer exists, or it is an earlier run of this very process. A name from
    another machine is never judged here: its lease decides."""
    parts = name.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return True  # not a name we give: nobody can be waiting to record it
    host, pid = parts[0], int(parts[1])
    if host != machine.name():
        return False
    if pid == os.getpid():
        return True  # a run of ours that ended (a claim outlives its run only by a crash)
    return not machine.alive(pid)


def take_back_abandoned(engine: Engine, send_id: int, claimer: str, journal: Journal) -> int:
    """Return to the queue the rows of the send whose worker died or whose lease lapsed (never
    `claimer`'s own, nor a live worker's); returns how many. What a dead worker of this machine
    journaled as accepted is recorded as sent first, so only its unanswered messages (at most
    one per connection) can go twice."""
    journal.apply_orphans(engine)
    with engine.begin() as conn:
        returned, _ = db.deliveries.requeue(
            conn, send_id, lambda name: name != claimer and gone(name)
        )
    if returned:
        log.warning(
            "send %s: %d message(s) of a stopped worker are back in the queue", send_id, returned
        )
    return returned
