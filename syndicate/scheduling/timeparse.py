"""Times in the author's time zone.

`parse_time` reads what an author types ("tomorrow 07:00", "+2h", "next saturday 00:01", ISO
dates) and `describe` echoes it back so there is no doubt which instant was meant. Every instant
leaves here as an aware UTC datetime. Channel policies live in `policies.py`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from syndicate.errors import SyndicateError

WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_CRON_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_UNIT_WORDS = {
    "week": "w",
    "weeks": "w",
    "day": "d",
    "days": "d",
    "hour": "h",
    "hours": "h",
    "minute": "m",
    "minutes": "m",
    "min": "m",
    "mins": "m",
}
TIME_HELP = (
    "use an ISO date and time ('2026-12-01 07:00'), 'today 18:00', 'tomorrow 07:00', "
    "'saturday 00:01', 'next saturday 00:01', '07:00', '+2h', '+1d6h', 'in 30 minutes' or 'now'"
)


class TimeError(SyndicateError):
    """A time or policy the author typed could not be understood."""


# --- times ------------------------------------------------------------------------------------


def parse_time(text: str, zone: ZoneInfo, now: datetime) -> datetime:
    """The instant `text` names, read in `zone` relative to `now`; an aware UTC datetime.

    Weekdays: `saturday 00:01` is the first Saturday 00:01 still ahead (today when it is still
    to come); `next saturday 00:01` is always seven days after that, the Saturday after the
    coming one. A wall-clock time the clocks skip (spring forward) or repeat (fall back) is
    refused with the choices spelled out, never guessed.
    """
    raw = " ".join(text.strip().lower().split())
    if not raw:
        raise TimeError(f"no time given; {TIME_HELP}")
    now_local = now.astimezone(zone)
    if raw == "now":
        return now.astimezone(UTC)
    relative = _parse_relative(raw)
    if relative is not None:
        return (now + relative).astimezone(UTC)
    iso = _parse_iso(text.strip(), zone)
    if iso is not None:
        return iso
    words = raw.split(" ")
    clock = parse_clock(words[-1]) if words else None
    if clock is None:
        raise TimeError(f"cannot read {text!r} as a time; {TIME_HELP}")
    day_words = words[:-1]
    if day_words[:1] == ["on"]:
        day_words = day_words[1:]
    today = now_local.date()
    if not day_words:
        day = today if _wall(today, clock, zone) > now else today + timedelta(days=1)
    elif day_words == ["today"]:
        day = today
    elif day_words == ["tomorrow"]:
        day = today + timedelta(days=1)
    elif len(day_words) <= 2 and day_words[-1] in WEEKDAYS and day_words[:-1] in ([], ["next"]):
        day = _coming_weekday(today, WEEKDAYS.index(day_words[-1]), clock, zone, now)
        if day_words[0] == "next":
            day += timedelta(days=7)
    else:
        raise TimeError(f"cannot read {text!r} as a time; {TIME_HELP}")
    return _local(day, clock, zone, text)


def parse_future(
    text: str,
    zone: ZoneInfo,
    now: datetime,
    what: str = "send time",
    read_from: datetime | None = None,
) -> datetime:
    """`parse_time` read from `read_from` (default `now`), refusing an instant before `now`
    ('now' itself is fine)."""
    value = parse_time(text, zone, read_from or now)
    if value < now:
        raise TimeError(
            f"the {what} {text!r} is in the past ({describe(value, zone)}); give a time from "
            "now on, e.g. 'tomorrow 07:00' or '+2h'"
            + (", or 'now' to send at once" if what == "send time" else "")
        )
    return value


def check_embargo_rule(text: str) -> None:
    """A default embargo is read afresh for every column, from the time it goes to editors:
    refuse forms that name one fixed instant (or the send time itself)."""
    raw = " ".join(text.strip().lower().split())
    if raw == "now" or raw.startswith("today") or re.match(r"^\d{4}-\d{2}-\d{2}", raw):
        raise TimeError(
            f"{text!r} names one fixed time, not a rule for every column; write e.g. "
            "'saturday 00:01', 'next saturday 00:01', 'tomorrow 06:00' or '+2d'"
        )
    parse_time(text, ZoneInfo("UTC"), datetime(2026, 1, 1, 12, tzinfo=UTC))


def _parse_relative(raw: str) -> timedelta | None:
    if raw.startswith("+"):
        body = raw[1:].replace(" ", "")
        parts = re.findall(r"(\d+)([wdhms])", body)
        if not parts or "".join(n + u for n, u in parts) != body:
            return None
        return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))
    match = re.fullmatch(r"in (\d+) ([a-z]+)", raw)
    if match and match.group(2) in _UNIT_WORDS:
        return timedelta(seconds=int(match.group(1)) * _UNITS[_UNIT_WORDS[match.group(2)]])
    return None


def _parse_iso(text: str, zone: ZoneInfo) -> datetime | None:
    if not re.match(r"^\d{4}-\d{2}-\d{2}", text):
        return None
    try:
        value = datetime.fromisoformat(text.replace(" ", "T", 1) if " " in text else text)
    except ValueError as exc:
        raise TimeError(f"cannot read {text!r} as an ISO date and time: {exc}") from None
    if len(text.strip()) == 10:
        raise TimeError(f"{text!r} has no time of day; add one, e.g. '{text.strip()} 07:00'")
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    return _local(value.date(), value.time(), zone, text)


def parse_clock(word: str) -> time | None:
    match = re.fullmatch(r"(\d{1,2})(?::(\d{2}))?(am|pm)?", word)
    if not match or (match.group(2) is None and match.group(3) is None):
        return None
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    if match.group(3):
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if match.group(3) == "pm" else 0)
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def _coming_weekday(start: date, weekday: int, clock: time, zone: ZoneInfo, now: datetime) -> date:
    """The first date on that weekday whose `clock` is still ahead of `now`."""
    day = start + timedelta(days=(weekday - start.weekday()) % 7)
    if _wall(day, clock, zone) <= now:
        day += timedelta(days=7)
    return day


def _wall(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """A wall-clock time in `zone` as UTC, taking the first reading of a repeated hour (only
    for deciding whether a day's time has passed; `_local` refuses such times)."""
    return datetime.combine(day, clock).replace(tzinfo=zone).astimezone(UTC)


def _offset(value: datetime) -> str:
    offset = value.strftime("%z")
    return f"{offset[:3]}:{offset[3:]}"


def _local(day: date, clock: time, zone: ZoneInfo, text: str) -> datetime:
    """A wall-clock time in `zone` as UTC; refuses a time the clocks skip or repeat."""
    first = datetime.combine(day, clock).replace(tzinfo=zone, fold=0)
    second = first.replace(fold=1)
    stamp = f"{day.isoformat()} {clock:%H:%M}"
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != first.replace(tzinfo=None):
        raise TimeError(
            f"{text!r}: {stamp} does not exist in {zone.key} (the clocks skip that hour); "
            "choose another time"
        )
    if first.utcoffset() != second.utcoffset():
        readings = " or ".join(
            f"{stamp} {v.tzname()} = {v.astimezone(UTC):%H:%M} UTC" for v in (first, second)
        )
        choices = " or ".join(f"'{stamp}{_offset(v)}'" for v in (first, second))
        raise TimeError(
            f"{text!r}: {stamp} happens twice in {zone.key} (the clocks go back): {readings}; "
            f"write which one you mean with its UTC offset, {choices}"
        )
    return first.astimezone(UTC)


def describe(value: datetime, zone: ZoneInfo) -> str:
    """An instant as the author reads it, with zone, offset and UTC: never ambiguous."""
    local = value.astimezone(zone)
    offset = local.strftime("%z")
    offset = f"UTC{offset[:3]}:{offset[3:]}"
    return (
        f"{local:%A} {local.day} {local:%B %Y, %H:%M} {local.tzname()} ({offset}) "
        f"= {value.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    )


def short(value: datetime | None, zone: ZoneInfo) -> str:
    """Compact form for tables: '2026-12-01 07:00 EST'."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


# --- cron ---------------------------------------------------------------------------------------
