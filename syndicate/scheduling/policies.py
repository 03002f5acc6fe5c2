"""A channel's send policy from settings.toml ("immediately", "at 07:00", "cron: 0 7 * * tue",
"digest: 0 7 * * tue", "manual") and the cron arithmetic behind it.

Cron arithmetic is APScheduler's CronTrigger (DST-correct in the given zone); only the weekday
numbers are translated first, because APScheduler 3.x counts 0 as Monday while cron counts 0 as
Sunday.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from syndicate.scheduling.timeparse import TimeError, parse_clock

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

_CRON_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def cron_trigger(expr: str, zone: ZoneInfo) -> CronTrigger:
    """A standard 5-field crontab line (0 or 7 = Sunday) as an APScheduler trigger."""
    fields = expr.split()
    if len(fields) != 5:
        raise TimeError(
            f"cron expression {expr!r} needs 5 fields (minute hour day month weekday), "
            f"e.g. '0 7 * * tue' for Tuesdays at 07:00"
        )
    fields[4] = _cron_weekdays(fields[4], expr)
    # Imported here: APScheduler costs every command (and --help) ~60 ms otherwise.
    from apscheduler.triggers.cron import CronTrigger

    try:
        return CronTrigger.from_crontab(" ".join(fields), timezone=zone)
    except ValueError as exc:
        raise TimeError(f"cron expression {expr!r}: {exc}") from None


def _cron_weekdays(field: str, expr: str) -> str:
    def name(number: str) -> str:
        if int(number) > 7:
            raise TimeError(f"cron expression {expr!r}: weekday {number} is not 0-7")
        return _CRON_DAYS[int(number)]

    parts = []
    for part in field.split(","):
        days, slash, step = part.partition("/")
        days = re.sub(r"\d+", lambda m: name(m.group(0)), days)
        parts.append(days + slash + step)
    return ",".join(parts)


def next_cron(expr: str, zone: ZoneInfo, after: datetime) -> datetime:
    """The first time strictly after `after` that the cron expression names, in UTC."""
    trigger = cron_trigger(expr, zone)
    fire = trigger.get_next_fire_time(None, after + timedelta(seconds=1))
    if fire is None:
        raise TimeError(f"cron expression {expr!r} never fires")
    return fire.astimezone(UTC)


# --- policies -----------------------------------------------------------------------------------

POLICY_HELP = (
    "write one of: 'immediately'; 'at HH:MM' (every day at that time); "
    "'cron: MIN HOUR DAY MONTH WEEKDAY' (e.g. 'cron: 0 7 * * tue'); "
    "'digest: MIN HOUR DAY MONTH WEEKDAY' (newsletter only: one edition with every new post); "
    "'manual' (email the author a preview; nothing goes out until approved)"
)


@dataclass(frozen=True)
class Policy:
    """A channel's send policy. `kind` is immediately | cron | digest | manual."""

    kind: str
    cron: str = ""
    text: str = ""

    def first_time(self, found: datetime, zone: ZoneInfo) -> datetime:
        """When a post found at `found` is scheduled (immediately/manual: at once)."""
        if self.kind in ("cron", "digest"):
            return next_cron(self.cron, zone, found - timedelta(seconds=1))
        return found


def parse_policy(text: str) -> Policy:
    raw = " ".join(text.strip().split())
    lowered = raw.lower()
    if lowered in ("immediately", "immediate", "now"):
        return Policy("immediately", text=raw)
    if lowered == "manual":
        return Policy("manual", text=raw)
    match = re.fullmatch(r"at (.+)", lowered)
    if match:
        clock = parse_clock(match.group(1))
        if clock is None:
            raise TimeError(f"policy {text!r}: {match.group(1)!r} is not a time like 07:00")
        return Policy("cron", f"{clock.minute} {clock.hour} * * *", raw)
    kind, colon, expr = raw.partition(":")
    if colon and kind.strip().lower() in ("cron", "digest"):
        expr = expr.strip()
        cron_trigger(expr, ZoneInfo("UTC"))  # validates
        return Policy(kind.strip().lower(), expr, raw)
    raise TimeError(f"unknown send policy {text!r}; {POLICY_HELP}")
