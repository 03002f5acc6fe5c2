"""On PostgreSQL every query is planned for the data it meets: no server-side prepared
statements, whose generic plan, made while a table was empty, kept the list sync's lookup of
each chunk of addresses a sequential scan (100,000 new readers: 283 s instead of 9 s).

Runs on PostgreSQL whichever database the suite runs on (the `postgres_url` fixture).
"""

from __future__ import annotations

from sqlalchemy import text

from syndicate import db
from syndicate.audience import subscribers
from syndicate.audience.importers import ImportedRow
from syndicate.models import RecipientKind


def test_a_growing_list_is_merged_without_prepared_statements(postgres_url: str) -> None:
    engine = db.connect(postgres_url)
    try:
        rows = [
            ImportedRow(line=n + 2, email=f"reader{n}@example.org", name="", status="active")
            for n in range(6 * subscribers.MERGE_CHUNK)
        ]
        with engine.begin() as conn:
            # The merge's own path, chunk after chunk in one transaction, as a list sync runs.
            report = subscribers.MergeReport()
            for chunk in subscribers.chunks(rows, subscribers.MERGE_CHUNK):
                subscribers._merge_chunk(
                    conn, RecipientKind.READER, chunk, "list", db.now(), report, None
                )
            # psycopg would have prepared the chunk lookup after its fifth run.
            prepared = conn.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar()
        assert report.added == len(rows)
        assert prepared == 0
    finally:
        engine.dispose()
