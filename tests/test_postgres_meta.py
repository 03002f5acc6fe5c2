"""Processes starting together on one PostgreSQL database all get the same installation id
and generated key: one stores it, the others read it (two `syndicate send` side by side once
failed with a UniqueViolation on meta's key)."""

from __future__ import annotations

import threading
import time

from syndicate import db


def test_a_second_process_making_the_installation_id_gets_the_first_ones(
    postgres_url: str,
) -> None:
    engine = db.connect(postgres_url)
    got: list[str] = []
    with engine.begin() as first:
        # The first process has stored its id and not yet committed when the second looks.
        first.execute(db.schema.meta.insert().values(key="installation_id", value="first"))
        second = threading.Thread(target=lambda: got.append(db.meta.installation_id(engine)))
        second.start()
        time.sleep(0.5)  # the second now waits on the first's uncommitted key
    second.join(timeout=30)
    engine.dispose()
    assert got == ["first"]
