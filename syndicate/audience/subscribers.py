"""Subscribers: the author's lists and imports merged into the database, opt-in, unsubscribe.

The CSV files say who the author wants to reach; the database is the record of status. Merging
adds and updates people but never re-activates an address that unsubscribed, bounced or
complained: only a confirmed opt-in (`confirm`) brings one back.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from syndicate import db, tokens
from syndicate.audience import importers
from syndicate.audience.importers import EDITOR_FIELDS, ImportedRow, ImportFormatError, RowProblem
from syndicate.db import Engine
from syndicate.db.status_changes import ChangedBy, NewChange
from syndicate.errors import SyndicateError
from syndicate.models import RecipientKind, RecipientStatus

log = logging.getLogger(__name__)

T = TypeVar("T")
# Rows merged per query: the peak memory of a list sync follows it (bench/memory.py on
# PostgreSQL, 100,000 readers: 103.5 MB with 2,000, 98.8 MB with 500), and a round trip per
# 500 rows costs nothing next to the rows' own work.
MERGE_CHUNK = 500

__all__ = [
    "EDITOR_FIELDS",
    "ImportFormatError",
    "MergeReport",
    "RowProblem",
    "SyncReport",
    "export_csv",
    "import_file",
    "set_status_by_author",
    "sync",
    "unsubscribe_with_token",
    "valid_address",
]


@dataclass
class MergeReport:
    """What a merge did (or, in a dry run, would do)."""

    added: int = 0
    added_suppressed: int = 0  # new addresses the source already marked unsubscribed/bounced
    updated: int = 0
    unchanged: int = 0
    newly_suppressed: int = 0  # active here, unsubscribed in the source: now unsubscribed here
    kept_suppressed: int = 0  # unsubscribed/bounced here: the file does not bring them back
    problems: list[RowProblem] = field(default_factory=list)
    skipped: list[RowProblem] = field(default_factory=list)
    # An import keeps the name and spelling already on the list; here is what the file said.
    differences: list[RowProblem] = field(default_factory=list)
    tool: str = "csv"
    encoding: str = ""
    delimiter: str = ","
    dry_run: bool = False
    # A list sync that did not read the file: it is as it was at the last sync.
    unchanged_file: bool = False

    @property
    def total_rows(self) -> int:
        return (
            self.added
            + self.added_suppressed
            + self.updated
            + self.unchanged
            + self.newly_suppressed
            + self.kept_suppressed
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "dry_run": self.dry_run,
            "unchanged_file": self.unchanged_file,
            "added": self.added,
            "added_suppressed": self.added_suppressed,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "newly_suppressed": self.newly_suppressed,
            "kept_suppressed": self.kept_suppressed,
            "problems": [{"line": p.line, "message": p.message} for p in self.problems],
            "skipped": [{"line": p.line, "message": p.message} for p in self.skipped],
            "differences": [{"line": p.line, "message": p.message} for p in self.differences],
        }


# The author's CSV sync reports the same figures.
SyncReport = MergeReport


def valid_address(address: str) -> bool:
    return importers.check_address(address)[0] is not None


def merge(
    engine: Engine,
    kind: RecipientKind,
    rows: Iterable[ImportedRow],
    source: str,
    *,
    dry_run: bool = False,
    report: MergeReport | None = None,
    imported_from: Path | None = None,
) -> MergeReport:
    """Merge parsed rows into one audience in a single transaction (nothing written on dry run).

    The author's own list (`imported_from` None) may change a name or the spelling of an
    address; another tool's export never does: the difference is reported instead.

    Rows are merged in chunks of `MERGE_CHUNK`: the people of each chunk already here are
    looked up by address (one query), new ones inserted with one executemany, so memory does
    not grow with the list and 100,000 rows take seconds.
    """
    report = report or MergeReport()
    report.dry_run = dry_run
    at = db.now()
    with engine.begin() as conn:
        for chunk in chunks(rows, MERGE_CHUNK):
            _merge_chunk(conn, kind, chunk, source, at, report, imported_from)
    return report


def chunks(rows: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _merge_chunk(
    conn: db.Connection,
    kind: RecipientKind,
    rows: list[ImportedRow],
    source: str,
    at: Any,
    report: MergeReport,
    imported_from: Path | None,
) -> None:
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    history: list[NewChange] = []
    existing = db.recipients.recipient_keys(conn, kind, [row.email.lower() for row in rows])
    # Only a sync of the author's own list defers to their resubscribe (an import is news).
    brought_back = (
        db.status_changes.brought_back_by_author(
            conn,
            [
                here["id"]
                for row in rows
                if row.status != "active"
                and (here := existing.get(row.email.lower())) is not None
                and here["status"] == "active"
            ],
        )
        if imported_from is None
        else set()
    )
    for row in rows:
        key = row.email.lower()
        current = existing.get(key)
        if current is None:
            inserts.append(_new_recipient(kind, row, source, at))
            existing[key] = {"status": row.status, "name": row.name, "fields": row.fields}
            if row.status == "active":
                report.added += 1
            else:
                report.added_suppressed += 1
            continue
        change = _changes(current, row)
        if imported_from is not None:
            _keep_identity(change, current, row, imported_from, report)
        if current["status"] != "active":
            report.kept_suppressed += 1
        elif row.status != "active" and current.get("id") in brought_back:
            # The author resubscribed them after their own list said otherwise: a sync of the
            # list does not undo it (another tool's export does: it is news).
            report.unchanged += 1
        elif row.status != "active":
            change.update(
                status=row.status, unsubscribed_at=at, unsubscribe_reason=row.reason[:500]
            )
            report.newly_suppressed += 1
            if "id" in current:
                why = row.reason or f"{row.status} in {source}"
                history.append(
                    NewChange(current["id"], "active", row.status, ChangedBy.IMPORT, why, at)
                )
        elif change:
            report.updated += 1
        else:
            report.unchanged += 1
        if change and "id" in current:
            updates.append({"rid": current["id"], "updated_at": at, **change})
    if not report.dry_run:
        db.recipients.insert_recipients(conn, inserts)
        db.recipients.update_recipients(conn, updates)
        db.status_changes.record(conn, history)


def _new_recipient(kind: RecipientKind, row: ImportedRow, source: str, at: Any) -> dict[str, Any]:
    suppressed = row.status != "active"
    return {
        "kind": kind.value,
        "email": row.email,
        "email_key": row.email.lower(),
        "name": row.name,
        "status": row.status,
        "fields": row.fields,
        "created_at": at,
        "updated_at": at,
        "source": source,
        "confirmed_at": None,
        "unsubscribed_at": at if suppressed else None,
        "unsubscribe_reason": row.reason[:500] if suppressed else "",
    }


def _changes(current: dict[str, Any], row: ImportedRow) -> dict[str, Any]:
    """Name, spelling of the address and editor fields the file changed (never status)."""
    change: dict[str, Any] = {}
    if row.name and row.name != current["name"]:
        change["name"] = row.name
    if row.fields and row.fields != (current["fields"] or {}):
        change["fields"] = row.fields
    if current.get("email") is not None and row.email != current["email"]:
        change["email"] = row.email
    return change


def _keep_identity(
    change: dict[str, Any],
    current: dict[str, Any],
    row: ImportedRow,
    path: Path,
    report: MergeReport,
) -> None:
    """Take name and address spelling out of an import's changes, reporting each difference."""
    kept = {
        "name": f"named {current['name']!r} here, {row.name!r} in the file; kept the name here",
        "email": f"written {row.email!r} in the file; kept the spelling here",
    }
    for column, difference in kept.items():
        if column in change:
            del change[column]
            report.differences.append(
                RowProblem(path, row.line, f"{current['email']}: {difference}")
            )


def import_file(
    engine: Engine, path: Path, kind: RecipientKind, *, dry_run: bool = False
) -> MergeReport:
    """Import an export from another tool (or any CSV); raises ImportFormatError if unreadable."""
    parsed = importers.parse(path, editor_fields=kind is RecipientKind.EDITOR)
    report = MergeReport(
        problems=parsed.problems,
        skipped=parsed.skipped,
        tool=parsed.tool,
        encoding=parsed.encoding,
        delimiter=parsed.delimiter,
    )
    merge(
        engine,
        kind,
        parsed.rows,
        f"import:{parsed.tool}",
        dry_run=dry_run,
        report=report,
        imported_from=path,
    )
    log.info(
        "%s (%s export, %s, delimiter %r): %d added, %d added as unsubscribed/bounced, "
        "%d updated, %d unchanged, %d newly unsubscribed, %d kept unsubscribed, "
        "%d bad row(s), %d skipped%s",
        path,
        parsed.tool,
        parsed.encoding,
        parsed.delimiter,
        report.added,
        report.added_suppressed,
        report.updated,
        report.unchanged,
        report.newly_suppressed,
        report.kept_suppressed,
        len(report.problems),
        len(report.skipped),
        " (dry run: nothing written)" if dry_run else "",
    )
    return report


def sync(
    engine: Engine, path: Path, kind: RecipientKind, *, dry_run: bool = False, force: bool = False
) -> MergeReport:
    """Merge one of the author's lists when it changed since the last sync (`force`: in any
    case), streaming; bad rows are reported, good rows still land (audience/lists.py)."""
    from syndicate.audience import lists

    return lists.sync(engine, path, kind, dry_run=dry_run, force=force)


EXPORT_COLUMNS = (
    "email",
    "name",
    "kind",
    "status",
    "source",
    "created_at",
    "confirmed_at",
    "unsubscribed_at",
    "unsubscribe_reason",
    *EDITOR_FIELDS,
)


def export_rows(engine: Engine, kind: RecipientKind | None = None) -> list[dict[str, str]]:
    with engine.connect() as conn:
        rows = db.recipients.list_recipients(conn, kind)
    out = []
    for row in rows:
        record = {
            column: _text(getattr(row, column))
            for column in EXPORT_COLUMNS
            if column not in EDITOR_FIELDS
        } | {name: str(row.fields.get(name, "")) for name in EDITOR_FIELDS}
        out.append(record)
    return out


def export_csv(engine: Engine, kind: RecipientKind | None = None) -> str:
    """Every recipient with status and history, as CSV (the import reads it back).

    Names and editor fields are typed by strangers at sign-up: a cell a spreadsheet would run
    as a formula gets a leading `'` (shown as text), which the importer takes off again.
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in export_rows(engine, kind):
        writer.writerow({column: importers.neutralise_cell(value) for column, value in row.items()})
    return buffer.getvalue()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return db.as_utc(value).isoformat()
    return str(value)


# --- unsubscribe --------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnsubscribeOutcome:
    ok: bool  # the token was genuine
    changed: bool = False  # this request unsubscribed the person (False: already was)
    email: str = ""
    recipient_id: int = 0
    status: str = ""


def check_unsubscribe_token(engine: Engine, key: bytes, token: str) -> UnsubscribeOutcome:
    """Who a genuine unsubscribe token names, without changing anything."""
    claim = tokens.verify(key, token, purpose="unsubscribe")
    if claim is None:
        return UnsubscribeOutcome(ok=False)
    with engine.connect() as conn:
        row = db.recipients.recipient_row(conn, claim.recipient_id)
    if row is None:
        return UnsubscribeOutcome(ok=False)
    return UnsubscribeOutcome(ok=True, email=row.email, recipient_id=row.id, status=row.status)


def unsubscribe_with_token(
    engine: Engine, key: bytes, token: str, how: str = "link"
) -> UnsubscribeOutcome:
    """Unsubscribe the person a genuine token names; a forged or altered token changes nothing."""
    claim = tokens.verify(key, token, purpose="unsubscribe")
    if claim is None:
        log.warning("unsubscribe refused: the token is not genuine")
        return UnsubscribeOutcome(ok=False)
    with engine.begin() as conn:
        row = db.recipients.recipient_row(conn, claim.recipient_id)
        if row is None:
            return UnsubscribeOutcome(ok=False)
        changed = db.recipients.mark_recipient(
            conn, row.id, RecipientStatus.UNSUBSCRIBED, f"{how} (send {claim.send_id})"
        )
    if changed:
        log.info("%s unsubscribed (%s, send %d)", row.email, how, claim.send_id)
    return UnsubscribeOutcome(ok=True, changed=changed, email=row.email, recipient_id=row.id)


def refusal_by_author(row: db.recipients.RecipientRecord, active: bool) -> str:
    """Why the author may not make this change by hand ("" when they may): someone who reported
    a newsletter as spam is never re-added by the author."""
    if active and row.status is RecipientStatus.COMPLAINED:
        return (
            f"{row.email} reported a newsletter as spam; they can subscribe again "
            "themselves, but the author does not re-add them"
        )
    return ""


def set_status_by_author(engine: Engine, recipient_id: int, active: bool, *, where: str) -> bool:
    """Unsubscribe or resubscribe one person by the author's hand (on the desk, from the command
    line: `where` says which), recorded in their history; True when this changed them. A spam
    complaint is never undone here: the person can subscribe again themselves."""
    reason = f"by the author, {where}"
    with engine.begin() as conn:
        row = db.recipients.recipient_row(conn, recipient_id)
        if row is None:
            raise SyndicateError(f"there is no subscriber {recipient_id}")
        refused = refusal_by_author(row, active)
        if refused:
            raise SyndicateError(refused)
        if not active:
            return db.recipients.mark_recipient(
                conn, recipient_id, RecipientStatus.UNSUBSCRIBED, reason, by=ChangedBy.AUTHOR
            )
        changed = db.desk.reactivate(conn, recipient_id)
        if changed:
            change = NewChange(
                recipient_id, row.status, RecipientStatus.ACTIVE, ChangedBy.AUTHOR, reason
            )
            db.status_changes.record(conn, [change])
        return changed
