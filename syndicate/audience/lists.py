"""The author's CSV lists, synced streaming and only when the file changed.

Every `send` and `run` syncs the lists. A list whose size, mtime, device, inode and ctime
match what the database recorded at the last sync is not opened (another file of the same size
and mtime is not taken for it); one whose bytes hash the same (SHA-256) is not parsed.
A changed list is read twice, both times in blocks: once to hash it and find its encoding, once
to parse it, row by row, merging chunks of rows as they come. Duplicates are found through
`db.list_files.SeenAddresses` (on disk), so memory stays flat at a million rows.

The rules per row are those of `importers.parse` (which reads a whole file at once, for
imports): same checks, same messages, same order.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from syndicate import db
from syndicate.audience import importers
from syndicate.audience.importers import ImportedRow, ImportFormatError, RowProblem
from syndicate.audience.subscribers import MERGE_CHUNK, MergeReport, merge
from syndicate.db import Engine
from syndicate.db.list_files import ListFile, SeenAddresses
from syndicate.headers import one_line
from syndicate.models import RecipientKind

log = logging.getLogger(__name__)

BLOCK = 1 << 20
# The sample the delimiter is sniffed from (importers.sniff_delimiter reads its first 50 lines).
SAMPLE = 64 * 1024
# A file written this close to its sync may change again within the file system's timestamp
# granularity without its mtime showing it: its mtime is not trusted next time ("racy git").
RACY_SECONDS = 2.0
# No row of a list is this long; csv's own limit for one field is the same (128 KiB).
MAX_LINE = 128 * 1024


def sync(
    engine: Engine, path: Path, kind: RecipientKind, *, dry_run: bool = False, force: bool = False
) -> MergeReport:
    """Merge one of the author's lists if it changed since the last sync (`force`: whatever
    it says); bad rows are reported, good rows still land. `report.unchanged_file` is True when
    the list was not read."""
    report = MergeReport()
    try:
        stat = path.stat()
    except FileNotFoundError:
        report.problems.append(RowProblem(path, 0, f"{kind.value} list not found; nobody added"))
        return report
    with engine.connect() as conn:
        last = db.list_files.last_synced(conn, kind.value)
    if (
        not force
        and last is not None
        and last.path == str(path)
        and (last.size, last.mtime_ns, last.device, last.inode, last.ctime_ns)
        == (stat.st_size, stat.st_mtime_ns, stat.st_dev, stat.st_ino, stat.st_ctime_ns)
    ):
        report.unchanged_file = True
        return report
    digest, encoding = fingerprint(path)
    now = db.now()
    mtime_ns = -1 if now.timestamp() - stat.st_mtime < RACY_SECONDS else stat.st_mtime_ns
    seen = ListFile(
        str(path), stat.st_size, mtime_ns, digest, now, stat.st_dev, stat.st_ino, stat.st_ctime_ns
    )
    if not force and last is not None and last.path == str(path) and last.sha256 == digest:
        report.unchanged_file = True
    elif not _merge_file(engine, path, kind, encoding, report, dry_run=dry_run):
        # Unreadable as a whole: not recorded, so every run says so until it is fixed.
        log.warning("%s", report.problems[-1])
        return report
    if not dry_run:
        with engine.begin() as conn:
            db.list_files.record_synced(conn, kind.value, seen)
    for problem in [*report.problems, *report.skipped]:
        log.warning("%s", problem)
    return report


def fingerprint(path: Path) -> tuple[str, str]:
    """SHA-256 of the file's bytes and the encoding `importers.decode` would choose, in one
    pass of 1 MB blocks: a BOM names it; else UTF-8 if every byte decodes, else Windows-1252,
    else Latin-1."""
    sha = hashlib.sha256()
    decoders = {
        "utf-8": codecs.getincrementaldecoder("utf-8")(),
        "cp1252": codecs.getincrementaldecoder("cp1252")(),
    }
    with path.open("rb") as file:
        block = file.read(BLOCK)
        bom = ""
        if block.startswith(codecs.BOM_UTF8):
            bom = "utf-8-sig"
        elif block.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            bom = "utf-16"
        while block:
            sha.update(block)
            for name, decoder in list(decoders.items()):
                if not bom:
                    try:
                        decoder.decode(block)
                    except UnicodeDecodeError:
                        del decoders[name]
            block = file.read(BLOCK)
    for name, decoder in list(decoders.items()):
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            del decoders[name]
    return sha.hexdigest(), bom or next(iter(decoders), "latin-1")


def _open_text(path: Path, encoding: str) -> TextIO:
    # As importers.decode: a UTF-8 file with a BOM replaces bad bytes instead of failing.
    errors = "replace" if encoding == "utf-8-sig" else "strict"
    return path.open(encoding=encoding, errors=errors, newline="")


def _merge_file(
    engine: Engine,
    path: Path,
    kind: RecipientKind,
    encoding: str,
    report: MergeReport,
    *,
    dry_run: bool,
) -> bool:
    """Parse and merge the list; False when it cannot be read as a list at all."""
    with _open_text(path, encoding) as file:
        sample = file.read(SAMPLE)
    if not sample.strip():
        report.problems.append(
            RowProblem(path, 1, "the file is empty; expected a header row with an 'email' column")
        )
        return False
    report.encoding = encoding
    report.delimiter = importers.sniff_delimiter(sample)
    seen = SeenAddresses()
    try:
        with _open_text(path, encoding) as file:
            rows = _rows(file, path, kind, report, seen)
            merge(engine, kind, rows, "list", dry_run=dry_run, report=report)
    except ImportFormatError as exc:
        report.problems.append(RowProblem(path, 1, str(exc)))
        return False
    finally:
        seen.close()
    # In line order, as importers.parse gives them (a chunk's status problems come later).
    report.problems.sort(key=lambda problem: problem.line)
    report.skipped.sort(key=lambda problem: problem.line)
    return True


def _records(
    file: TextIO, delimiter: str, path: Path, report: MergeReport
) -> Iterator[tuple[int, list[str]]]:
    """(first physical line number, fields) for every record, read as the file streams. A
    record csv refuses (a field over its limit) is reported and skipped; the rest still land."""
    reader = csv.reader(_lines(file, path, report), delimiter=delimiter)
    previous = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            report.problems.append(
                RowProblem(path, previous + 1, f"not readable as CSV ({exc}); row skipped")
            )
        else:
            yield previous + 1, [importers.restore_cell(cell) for cell in record]
        previous = reader.line_num


def _lines(file: TextIO, path: Path, report: MergeReport) -> Iterator[str]:
    """The file's physical lines for csv.reader, never more than MAX_LINE characters at once:
    csv would read a line whole, however long (a file with no newline is one line), so a longer
    one is read through in blocks, reported, and stands as a blank line (numbers stay right)."""
    number = 0
    while line := file.readline(MAX_LINE + 1):
        number += 1
        if len(line) <= MAX_LINE:
            yield line
            continue
        while line and not line.endswith(("\n", "\r")):
            line = file.readline(BLOCK)
        report.problems.append(
            RowProblem(path, number, f"the line is longer than {MAX_LINE:,} characters; skipped")
        )
        yield "\n"


def _rows(
    file: TextIO, path: Path, kind: RecipientKind, report: MergeReport, seen: SeenAddresses
) -> Iterator[ImportedRow]:
    """The list's good rows, in order, checked as importers.parse checks them; bad rows and
    duplicates go to the report."""
    records = _records(file, report.delimiter, path, report)
    header = next(records, None)
    if header is None:
        raise ImportFormatError("the file is empty; expected a header row with an 'email' column")
    columns = importers._Columns(header[1])
    report.tool = "csv"
    extras = (
        [
            (name, columns.index[importers.norm(name)])
            for name in importers.EDITOR_FIELDS
            if importers.norm(name) in columns.index
        ]
        if kind is RecipientKind.EDITOR
        else None
    )
    candidates: list[tuple[int, str, list[str]]] = []
    rows = importers.addressed_rows(records, columns.email, path, report.problems)
    for line, address, record in rows:
        candidates.append((line, address, record))
        if len(candidates) >= MERGE_CHUNK:
            yield from _first_of_each(candidates, path, columns, extras, report, seen)
            candidates = []
    yield from _first_of_each(candidates, path, columns, extras, report, seen)


def _first_of_each(
    candidates: list[tuple[int, str, list[str]]],
    path: Path,
    columns: importers._Columns,
    extras: list[tuple[str, int]] | None,
    report: MergeReport,
    seen: SeenAddresses,
) -> Iterator[ImportedRow]:
    """A chunk's rows whose address was not met before (the first row wins), made rows."""
    earlier = seen.first_lines([address.lower() for _, address, _ in candidates])
    new: dict[str, int] = {}
    for line, address, record in candidates:
        key = address.lower()
        first = earlier.get(key) or new.get(key)
        if first is not None:
            report.skipped.append(
                RowProblem(path, line, f"{address} already on line {first}; kept the first")
            )
            continue
        new[key] = line
        row = _row(path, line, address, record, columns, extras, report)
        if row is not None:
            yield row
    seen.add(new)


def _row(
    path: Path,
    line: int,
    address: str,
    record: list[str],
    columns: importers._Columns,
    extras: list[tuple[str, int]] | None,
    report: MergeReport,
) -> ImportedRow | None:
    """One row past its address checks; `extras` is None for readers (no editor fields)."""
    status, reason = importers._status(columns, record)
    if status == "unconfirmed":
        report.skipped.append(RowProblem(path, line, f"{address}: {reason}; not imported"))
        return None
    if status == "unknown":
        report.problems.append(RowProblem(path, line, f"{address}: {reason}"))
        return None
    # Names and fields are one line: control characters become spaces here, at the boundary.
    fields = {
        name: one_line(record[position])
        for name, position in extras or []
        if position < len(record)
    }
    if extras is not None:
        report.problems.extend(
            RowProblem(path, line, message)
            for message in importers.editor_problems(address, fields)
        )
    return ImportedRow(line, address, importers._name(columns, record), status, reason, fields)
