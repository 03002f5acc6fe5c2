"""The author's subscriber lists (subscribers/*.csv) merged into the database.

The CSV files say who the author wants to reach; the database is the record of status. Syncing
adds and updates people but never re-activates an address that unsubscribed or bounced.
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from syndicate import store
from syndicate.models import RecipientKind

log = logging.getLogger(__name__)

_ADDRESS = re.compile(
    r"^[^@\s<>(),;:\"\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$"
)

EDITOR_FIELDS = ("publication", "timezone", "word_limit", "formats", "quotes", "links")


@dataclass(frozen=True)
class RowProblem:
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class SyncReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[RowProblem] = field(default_factory=list)


def valid_address(address: str) -> bool:
    return bool(_ADDRESS.match(address))


def read_list(
    path: Path, kind: RecipientKind
) -> tuple[list[tuple[str, str, dict[str, str]]], list[RowProblem]]:
    """Rows (email, name, extra fields) and the problems of the rows that were left out."""
    rows: list[tuple[str, str, dict[str, str]]] = []
    problems: list[RowProblem] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "email" not in [f.strip().lower() for f in reader.fieldnames]:
            return [], [RowProblem(path, 1, "the header must have an 'email' column")]
        for record in reader:
            line = reader.line_num
            clean = {(k or "").strip().lower(): (v or "").strip() for k, v in record.items() if k}
            email = clean.pop("email", "")
            name = clean.pop("name", "")
            if not email:
                problems.append(RowProblem(path, line, "no email address; row skipped"))
                continue
            if not valid_address(email):
                problems.append(
                    RowProblem(path, line, f"{email!r} is not an email address; row skipped")
                )
                continue
            if email.lower() in seen:
                problems.append(RowProblem(path, line, f"{email} appears twice; kept the first"))
                continue
            seen.add(email.lower())
            extra = (
                {k: v for k, v in clean.items() if k in EDITOR_FIELDS}
                if kind is RecipientKind.EDITOR
                else {}
            )
            rows.append((email, name, extra))
    return rows, problems


def sync(engine: Engine, path: Path, kind: RecipientKind) -> SyncReport:
    """Merge one CSV list into the database; bad rows are reported, good rows still land."""
    report = SyncReport()
    if not path.exists():
        report.problems.append(RowProblem(path, 0, f"{kind.value} list not found; nobody added"))
        return report
    rows, report.problems = read_list(path, kind)
    with engine.begin() as conn:
        for email, name, extra in rows:
            outcome = store.upsert_recipient(conn, kind, email, name, extra)
            if outcome == "added":
                report.added += 1
            elif outcome == "updated":
                report.updated += 1
            else:
                report.unchanged += 1
    for problem in report.problems:
        log.warning("%s", problem)
    return report
