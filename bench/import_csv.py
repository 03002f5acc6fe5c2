"""Import a 100,000-row Mailchimp-shaped CSV into a fresh SQLite database and print the time.

Run: python bench/import_csv.py [ROWS]  (target: 100,000 rows in under 10 s on 2 cores).
Prints wall-clock and CPU seconds (CPU time is the steadier figure when other work shares the
machine), the parse alone, then a second import of the same file (every
row already known), which is what a re-import or the per-run list sync costs.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from syndicate import db
from syndicate.audience import importers, subscribers
from syndicate.models import RecipientKind

HEADER = '"Email Address","First Name","Last Name","MEMBER_RATING","OPTIN_TIME","TAGS"\n'


PROVIDERS = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "aol.com")


def domain(n: int) -> str:
    """Like a real list: most readers at a few big providers, 30 % at ~25,000 other domains."""
    if n % 10 < 7:
        return PROVIDERS[n % len(PROVIDERS)]
    return f"mail{n % 25_000}.example-{n % 7}.net"


def write_file(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(HEADER)
        for n in range(rows):
            if n % 1000 == 999:
                email = f"broken{n}@@{domain(n)}"  # a bad row every thousand
            elif n % 500 == 0:
                email = f"Reader.{n - 1}@{domain(n - 1).upper()}"  # a case-insensitive duplicate
            else:
                email = f"reader.{n}@{domain(n)}"
            handle.write(f'"{email}","Réader","Nümber {n}","2","2023-01-01 00:00:00",""\n')


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "export.csv"
        write_file(path, rows)
        engine = db.connect(f"sqlite:///{Path(folder) / 'bench.db'}")

        started = time.perf_counter()
        parsed = importers.parse(path)
        parse_seconds = time.perf_counter() - started
        print(
            f"parse:  {rows:,} rows in {parse_seconds:.2f} s "
            f"({len(parsed.rows):,} good, {len(parsed.problems):,} bad, "
            f"{len(parsed.skipped):,} duplicates)"
        )

        started, cpu = time.perf_counter(), time.process_time()
        report = subscribers.import_file(engine, path, RecipientKind.READER)
        first = time.perf_counter() - started
        print(
            f"import: {rows:,} rows in {first:.2f} s wall, {time.process_time() - cpu:.2f} s CPU, "
            f"parse included ({report.added:,} added)"
        )

        started = time.perf_counter()
        again = subscribers.import_file(engine, path, RecipientKind.READER)
        second = time.perf_counter() - started
        print(f"again:  {rows:,} rows in {second:.2f} s ({again.unchanged:,} unchanged)")
        verdict = "OK" if first < 10 else "TOO SLOW"
        print(f"target: first import < 10 s: {verdict}")


if __name__ == "__main__":
    main()
