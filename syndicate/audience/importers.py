"""Read subscriber CSVs: the author's lists and exports from other newsletter tools.

Each tool names its columns differently and marks people who left in its own way; this module
turns any of them into `ImportedRow`s (address, name, status, extra fields) plus a line-numbered
problem for every row it could not use. It never touches the database: `subscribers.py` merges.

Recognised exports (columns compared case-insensitively, spaces/underscores/dashes ignored):

- Mailchimp audience export: "Email Address", "First Name", "Last Name"; the unsubscribed file
  adds UNSUB_TIME/UNSUB_REASON, the cleaned (bounced) file CLEAN_TIME.
- Substack: "email", "active_subscription", "email_disabled", "created_at" …
- Ghost members: "email", "name", "subscribed_to_emails", "deleted_at" …
- Buttondown: "email" (or "email_address"), "type" (regular, premium, unsubscribed, …).
- WordPress/Jetpack subscribers: "email_address" (or "email"), "status", "subscribed".
- Plain CSV: "email" plus optional "name", "first_name", "last_name", "status".
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

from syndicate.headers import one_line
from syndicate.render.editor_profile import ProfileDefaults, parse_profile

EDITOR_FIELDS = ("publication", "timezone", "word_limit", "formats", "quotes", "links")
DELIMITERS = ",;\t|"

# Normalised header name → role. Normalising drops case, spaces, underscores and dashes.
EMAIL_COLUMNS = ("email", "emailaddress", "mail", "subscriberemail", "useremail")
NAME_COLUMNS = ("name", "fullname", "displayname", "subscribername")
FIRST_COLUMNS = ("firstname", "fname", "givenname")
LAST_COLUMNS = ("lastname", "lname", "surname", "familyname")

FALSE_WORDS = {"false", "no", "0", "n", "f", "off", ""}
TRUE_WORDS = {"true", "yes", "1", "y", "t", "on"}
UNSUBSCRIBED_WORDS = {"unsubscribed", "unsubscribe", "optedout", "optout", "inactive", "removed"}
BOUNCED_WORDS = {"bounced", "cleaned", "undeliverable", "bounce", "invalid"}
COMPLAINED_WORDS = {"complained", "spam", "spamreport", "spammy"}
UNCONFIRMED_WORDS = {"unactivated", "pending", "unconfirmed"}
ACTIVE_WORDS = {"", "active", "subscribed", "subscriber", "confirmed", "activated", "enabled"}
# In these columns any other word is an unknown status: the row is reported, not guessed active.
STRICT_STATUS_COLUMNS = ("status", "subscriptionstatus")
# Columns whose value is one of the words above, and every column that can carry a status.
WORD_STATUS_COLUMNS = ("status", "type", "subscribertype", "subscriptionstatus")
STATUS_COLUMNS = (
    *WORD_STATUS_COLUMNS,
    "cleantime",
    "unsubtime",
    "emaildisabled",
    "subscribedtoemails",
    "deletedat",
    "subscribed",
)


def norm(header: str) -> str:
    return re.sub(r"[\s_\-]+", "", header.strip().lower())


@dataclass(frozen=True)
class RowProblem:
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass(frozen=True)
class ImportedRow:
    line: int
    email: str
    name: str
    status: str  # active | unsubscribed | bounced | complained
    reason: str = ""
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class ParsedList:
    path: Path
    tool: str
    encoding: str
    delimiter: str
    rows: list[ImportedRow] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    # Rows left out on purpose (not errors): duplicates, never-confirmed sign-ups.
    skipped: list[RowProblem] = field(default_factory=list)


class ImportFormatError(ValueError):
    """The file as a whole cannot be read (no header, no email column, not text)."""


def decode(data: bytes) -> tuple[str, str]:
    """The text and the encoding it was in: UTF-8 (with or without BOM), UTF-16, else Latin-1."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace"), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), "utf-16"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"  # Windows' superset of Latin-1 (Excel)
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def sniff_delimiter(text: str) -> str:
    """csv.Sniffer on the first lines; checked against the header, which must split on it."""
    sample = "\n".join(text.splitlines()[:50])
    header = text.split("\n", 1)[0]
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        delimiter = ""
    if delimiter and delimiter in header:
        return delimiter
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def detect_tool(headers: Iterable[str]) -> str:
    names = {norm(h) for h in headers}
    if "emailaddress" in names and (
        "memberrating" in names or "leid" in names or "optintime" in names
    ):
        return "mailchimp"
    if "activesubscription" in names or "emaildisabled" in names:
        return "substack"
    if "subscribedtoemails" in names:
        return "ghost"
    if "type" in names and ("creationdate" in names or "secondaryid" in names):
        return "buttondown"
    if "emailaddress" in names and ("datesubscribed" in names or "subscriptiondate" in names):
        return "jetpack"
    if "emailaddress" in names and "firstname" in names:
        return "mailchimp"
    return "csv"


def _column(index: dict[str, int], candidates: tuple[str, ...]) -> int | None:
    for name in candidates:
        if name in index:
            return index[name]
    return None


class _Columns:
    """Where each role lives in a header row (indexes into the row list)."""

    def __init__(self, headers: list[str]) -> None:
        self.index: dict[str, int] = {}
        for position, header in enumerate(headers):
            self.index.setdefault(norm(header), position)
        email = _column(self.index, EMAIL_COLUMNS)
        if email is None:
            raise ImportFormatError(
                "no email column in the header "
                f"(found: {', '.join(h.strip() for h in headers) or 'nothing'}); "
                "name one column 'email'"
            )
        self.email = email
        self.name = _column(self.index, NAME_COLUMNS)
        self.first = _column(self.index, FIRST_COLUMNS)
        self.last = _column(self.index, LAST_COLUMNS)
        self.status_words = [c for c in WORD_STATUS_COLUMNS if c in self.index]
        self.has_status = any(c in self.index for c in STATUS_COLUMNS)

    def get(self, row: list[str], name: str) -> str:
        position = self.index.get(name)
        if position is None or position >= len(row):
            return ""
        return row[position].strip()


def _status(columns: _Columns, row: list[str]) -> tuple[str, str]:
    """(status, reason) from whatever status columns the export has."""
    if not columns.has_status:
        return "active", ""
    get = columns.get
    if get(row, "cleantime"):
        return "bounced", "cleaned in Mailchimp " + get(row, "cleantime")
    if get(row, "unsubtime"):
        reason = get(row, "unsubreason") or get(row, "unsubreasonother")
        return "unsubscribed", "unsubscribed in Mailchimp" + (f": {reason}" if reason else "")
    if "emaildisabled" in columns.index and get(row, "emaildisabled").lower() in TRUE_WORDS:
        return "unsubscribed", "email disabled in Substack"
    if (
        "subscribedtoemails" in columns.index
        and get(row, "subscribedtoemails").lower() in FALSE_WORDS
    ):
        return "unsubscribed", "not subscribed to emails in Ghost"
    if get(row, "deletedat"):
        return "unsubscribed", "deleted member"
    if "subscribed" in columns.index and get(row, "subscribed").lower() in FALSE_WORDS:
        return "unsubscribed", "not subscribed in the source"
    for column in columns.status_words:
        word = norm(get(row, column))
        if word in UNSUBSCRIBED_WORDS:
            return "unsubscribed", f"{column} {get(row, column)!r} in the source"
        if word in BOUNCED_WORDS:
            return "bounced", f"{column} {get(row, column)!r} in the source"
        if word in COMPLAINED_WORDS:
            return "complained", f"{column} {get(row, column)!r} in the source"
        if word in UNCONFIRMED_WORDS:
            return "unconfirmed", f"{column} {get(row, column)!r}: never confirmed the sign-up"
        if column in STRICT_STATUS_COLUMNS and word not in ACTIVE_WORDS:
            return "unknown", (
                f"{column} {get(row, column)!r} is not a status syndicate knows (active, "
                "unsubscribed, bounced, complained, pending); row skipped so nobody is mailed "
                "by mistake: fix the value and import again"
            )
    return "active", ""


def _name(columns: _Columns, row: list[str]) -> str:
    def at(position: int | None) -> str:
        return one_line(row[position]) if position is not None and position < len(row) else ""

    name = at(columns.name)
    if name:
        return name
    return " ".join(part for part in (at(columns.first), at(columns.last)) if part)


# A cell a spreadsheet would run as a formula starts with one of these (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: str) -> str:
    """The cell as a spreadsheet shows it as text: a `'` before a formula start."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def restore_cell(value: str) -> str:
    """The cell `neutralise_cell` wrote, as it was (so an export imports back unchanged)."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_STARTS) else value


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(first physical line number, fields) for every record; quoted newlines are allowed."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    previous = 0
    for record in reader:
        yield previous + 1, [restore_cell(cell) for cell in record]
        previous = reader.line_num


def validate(address: str):
    """email-validator without DNS. Internationalised local parts (SMTPUTF8) are refused: many
    servers cannot take them, and the whole list should not wait on one address. International
    domains are kept in their ASCII (IDNA) form, which every server takes."""
    return validate_email(address, check_deliverability=False, allow_smtputf8=False)


def check_address(address: str) -> tuple[str | None, str]:
    """(normalised address, '') or (None, why it is not an address)."""
    try:
        result = validate(address)
    except EmailNotValidError as exc:
        return None, str(exc)
    return result.ascii_email or result.normalized, ""


# RFC 5322 dot-atom: exactly the ASCII local parts email-validator accepts as already normal.
_ATEXT = r"[A-Za-z0-9_!#$%&'*+\-/=?^`{|}~]+"
_DOT_ATOM = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*\Z")
# Role names email-validator lower-cases (RFC 2142); they take the full path.
_ROLE_NAMES = {
    *("info", "marketing", "sales", "support", "abuse", "noc", "security", "postmaster"),
    *("hostmaster", "usenet", "news", "webmaster", "www", "uucp", "ftp"),
}


class AddressChecker:
    """email-validator, without repeating the domain work for every address at the same domain.

    Domain validation (IDNA, UTS-46) is most of email-validator's cost, and a list has few
    distinct domains. Every new domain and every address that is not plain ASCII goes through
    `validate_email`; a plain dot-atom local part at a domain it already accepted is valid by the
    same rules, so 100,000 rows take a fraction of the time and give the same answers.
    """

    def __init__(self) -> None:
        self.domains: dict[str, str] = {}

    def check(self, address: str) -> tuple[str | None, str]:
        local, at, domain = address.rpartition("@")
        known = self.domains.get(domain) if at else None
        if (
            known is not None
            and address.isascii()
            and len(address) <= 254
            and _DOT_ATOM.match(local)
            and local.lower() not in _ROLE_NAMES
        ):
            return f"{local}@{known}", ""
        try:
            result = validate(address)
        except EmailNotValidError as exc:
            return None, str(exc)
        if at:
            self.domains[domain] = result.ascii_domain
        return result.ascii_email or result.normalized, ""


def editor_problems(address: str, fields: dict[str, str]) -> list[str]:
    """Editor preferences that cannot be read (the row still lands; sends use the default)."""
    _, problems = parse_profile(fields, ProfileDefaults(), where=f"editor {address}")
    return [re.sub(r"; using .*$", "; the default is used when sending", p) for p in problems]


def parse(path: Path, *, editor_fields: bool = False, data: bytes | None = None) -> ParsedList:
    """Read one CSV file of subscribers; raises ImportFormatError when it has no usable header."""
    text, encoding = decode(path.read_bytes() if data is None else data)
    if not text.strip():
        raise ImportFormatError("the file is empty; expected a header row with an 'email' column")
    delimiter = sniff_delimiter(text)
    records = _records(text, delimiter)
    _, headers = next(records)
    columns = _Columns(headers)
    parsed = ParsedList(path, detect_tool(headers), encoding, delimiter)
    extras = (
        [(name, columns.index[norm(name)]) for name in EDITOR_FIELDS if norm(name) in columns.index]
        if editor_fields
        else []
    )
    seen: dict[str, int] = {}
    for line, address, record in addressed_rows(records, columns.email, path, parsed.problems):
        key = address.lower()
        if key in seen:
            parsed.skipped.append(
                RowProblem(path, line, f"{address} already on line {seen[key]}; kept the first")
            )
            continue
        seen[key] = line
        status, reason = _status(columns, record)
        if status == "unconfirmed":
            parsed.skipped.append(RowProblem(path, line, f"{address}: {reason}; not imported"))
            continue
        if status == "unknown":
            parsed.problems.append(RowProblem(path, line, f"{address}: {reason}"))
            continue
        # Names and fields are one line: control characters (a NUL, which PostgreSQL refuses
        # in text, an escape sequence) become spaces here, at the boundary.
        fields = {
            name: one_line(record[position]) for name, position in extras if position < len(record)
        }
        if editor_fields:
            parsed.problems.extend(
                RowProblem(path, line, message) for message in editor_problems(address, fields)
            )
        parsed.rows.append(
            ImportedRow(line, address, _name(columns, record), status, reason, fields)
        )
    return parsed


def addressed_rows(
    records: Iterable[tuple[int, list[str]]],
    email_column: int,
    path: Path,
    problems: list[RowProblem],
) -> Iterator[tuple[int, str, list[str]]]:
    """(line, checked address, record) of each row with a valid address; blank rows are passed
    over, and a row without one or with a bad one becomes a problem naming the line."""
    checker = AddressChecker()
    for line, record in records:
        if not any(cell.strip() for cell in record):
            continue
        raw = record[email_column].strip() if email_column < len(record) else ""
        if not raw:
            problems.append(RowProblem(path, line, "no email address; row skipped"))
            continue
        address, why = checker.check(raw)
        if address is None:
            problems.append(
                RowProblem(path, line, f"{raw!r} is not a valid email address ({why}); row skipped")
            )
            continue
        yield line, address, record
