"""Times the author types and send policies, read in the author's zone, DST-correct."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from syndicate import settings
from syndicate.errors import SettingsError
from syndicate.scheduling.policies import next_cron, parse_policy
from syndicate.scheduling.timeparse import TimeError, describe, parse_time
from tests.support.scheduling import set_key, utc

TORONTO = ZoneInfo("America/Toronto")
# Friday 27 November 2026, 07:00 in Toronto (EST, UTC-5).
NOW = utc(2026, 11, 27, 12)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tomorrow 07:00", utc(2026, 11, 28, 12)),
        ("today 18:30", utc(2026, 11, 27, 23, 30)),
        ("+2h", utc(2026, 11, 27, 14)),
        ("+1d6h", utc(2026, 11, 28, 18)),
        ("in 30 minutes", utc(2026, 11, 27, 12, 30)),
        # "saturday": the coming one; "next saturday": always a week after that.
        ("saturday 00:01", utc(2026, 11, 28, 5, 1)),
        ("next saturday 00:01", utc(2026, 12, 5, 5, 1)),
        ("on saturday 00:01", utc(2026, 11, 28, 5, 1)),
        ("friday 09:00", utc(2026, 11, 27, 14)),  # today, still ahead
        ("next friday 09:00", utc(2026, 12, 4, 14)),
        ("friday 06:00", utc(2026, 12, 4, 11)),  # today's has passed: next week
        ("next friday 06:00", utc(2026, 12, 11, 11)),
        ("tuesday 07:00", utc(2026, 12, 1, 12)),
        ("next tuesday 07:00", utc(2026, 12, 8, 12)),
        ("06:00", utc(2026, 11, 28, 11)),  # passed today: tomorrow
        ("7pm", utc(2026, 11, 28, 0)),
        ("2026-12-01 07:00", utc(2026, 12, 1, 12)),
        ("2026-12-01T07:00", utc(2026, 12, 1, 12)),
        ("2026-12-01T07:00+01:00", utc(2026, 12, 1, 6)),
        ("now", NOW),
    ],
)
def test_times_are_read_in_the_authors_zone(text: str, expected) -> None:
    assert parse_time(text, TORONTO, NOW) == expected


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("someday", "tomorrow 07:00"),
        ("2026-12-01", "no time of day"),
        ("2026-13-01 07:00", "ISO"),
        ("tomorrow 25:00", "cannot read"),
        ("+2 fortnights", "cannot read"),
        ("", "no time given"),
    ],
)
def test_unreadable_times_say_what_is_accepted(text: str, hint: str) -> None:
    with pytest.raises(TimeError, match=hint):
        parse_time(text, TORONTO, NOW)


def test_echo_is_unambiguous() -> None:
    when = parse_time("tomorrow 07:00", TORONTO, NOW)
    assert describe(when, TORONTO) == (
        "Saturday 28 November 2026, 07:00 EST (UTC-05:00) = 2026-11-28 12:00 UTC"
    )


def test_dst_spring_forward_in_toronto() -> None:
    before = utc(2027, 3, 13, 17)  # Saturday 13 March 2027, 12:00 EST
    # Wall-clock times keep their wall-clock meaning across the change...
    assert parse_time("tomorrow 07:00", TORONTO, before) == utc(2027, 3, 14, 11)  # EDT
    # ...a duration is real elapsed time...
    assert parse_time("+24h", TORONTO, before) == utc(2027, 3, 14, 17)
    # ...and a time the clocks skip is refused, not silently moved.
    with pytest.raises(TimeError, match="does not exist in America/Toronto"):
        parse_time("tomorrow 02:30", TORONTO, before)
    # Every Tuesday 07:00: 12:00 UTC before the change, 11:00 UTC after it.
    assert next_cron("0 7 * * tue", TORONTO, utc(2027, 3, 8)) == utc(2027, 3, 9, 12)
    assert next_cron("0 7 * * tue", TORONTO, utc(2027, 3, 10)) == utc(2027, 3, 16, 11)
    # A daily 02:30 on the day 02:30 does not exist runs once, at 03:30 EDT.
    assert next_cron("30 2 * * *", TORONTO, utc(2027, 3, 14, 5)) == utc(2027, 3, 14, 7, 30)


def test_dst_fall_back_in_toronto() -> None:
    # 1 November 2026: 01:30 happens twice. Nothing is guessed: the author is told both
    # readings and how to write each one.
    before = utc(2026, 10, 31, 12)  # Saturday 31 October, 08:00 EDT
    for text in ("2026-11-01 01:30", "sunday 01:30", "tomorrow 01:30"):
        with pytest.raises(TimeError) as refused:
            parse_time(text, TORONTO, before)
        assert str(refused.value) == (
            f"{text!r}: 2026-11-01 01:30 happens twice in America/Toronto (the clocks go "
            "back): 2026-11-01 01:30 EDT = 05:30 UTC or 2026-11-01 01:30 EST = 06:30 UTC; "
            "write which one you mean with its UTC offset, '2026-11-01 01:30-04:00' or "
            "'2026-11-01 01:30-05:00'"
        )
    first = parse_time("2026-11-01 01:30-04:00", TORONTO, before)
    second = parse_time("2026-11-01 01:30-05:00", TORONTO, before)
    assert (first, second) == (utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30))
    assert "EDT (UTC-04:00)" in describe(first, TORONTO)
    assert "EST (UTC-05:00)" in describe(second, TORONTO)
    # The hours either side are single and read as usual; a passed 01:30 today is no obstacle
    # to tomorrow's.
    assert parse_time("2026-11-01 00:30", TORONTO, before) == utc(2026, 11, 1, 4, 30)
    assert parse_time("2026-11-01 02:30", TORONTO, before) == utc(2026, 11, 1, 7, 30)
    assert parse_time("01:30", TORONTO, utc(2026, 11, 1, 17)) == utc(2026, 11, 2, 6, 30)
    assert next_cron("0 7 * * tue", TORONTO, utc(2026, 10, 26)) == utc(2026, 10, 27, 11)
    assert next_cron("0 7 * * tue", TORONTO, utc(2026, 10, 28)) == utc(2026, 11, 3, 12)
    daily = parse_policy("at 07:00")
    assert daily.first_time(utc(2026, 10, 31, 12), TORONTO) == utc(2026, 11, 1, 12)
    assert daily.first_time(utc(2026, 11, 1, 13), TORONTO) == utc(2026, 11, 2, 12)


def test_cron_weekday_numbers_mean_what_cron_means() -> None:
    # Cron counts 0 and 7 as Sunday (APScheduler 3.x alone would read 0 as Monday).
    sunday = utc(2026, 11, 29, 12)
    assert next_cron("0 7 * * 0", TORONTO, NOW) == sunday
    assert next_cron("0 7 * * 7", TORONTO, NOW) == sunday
    assert next_cron("0 7 * * 2", TORONTO, NOW) == utc(2026, 12, 1, 12)  # Tuesday
    assert next_cron("0 7 * * 1-5", TORONTO, NOW) == utc(2026, 11, 30, 12)  # Monday


@pytest.mark.parametrize(
    ("text", "kind", "cron"),
    [
        ("immediately", "immediately", ""),
        ("manual", "manual", ""),
        ("at 07:00", "cron", "0 7 * * *"),
        ("cron: 0 7 * * tue", "cron", "0 7 * * tue"),
        ("digest: 0 7 * * sat", "digest", "0 7 * * sat"),
    ],
)
def test_policies(text: str, kind: str, cron: str) -> None:
    policy = parse_policy(text)
    assert (policy.kind, policy.cron) == (kind, cron)


def test_bad_policies_and_embargo_rules_in_settings_name_the_key(project: Path) -> None:
    config = project / "settings.toml"
    set_key(config, "channels.newsletter", "policy", "weekly")
    with pytest.raises(SettingsError, match=r"channels.newsletter.policy: unknown send policy"):
        settings.load(config)
    set_key(config, "channels.newsletter", "policy", "cron: 0 7 * tue")
    with pytest.raises(SettingsError, match="needs 5 fields"):
        settings.load(config)
    set_key(config, "channels.newsletter", "policy", "at 7 o'clock")
    with pytest.raises(SettingsError, match="not a time like 07:00"):
        settings.load(config)
    set_key(config, "channels.newsletter", "policy", "digest: 0 7 * * sat")
    set_key(config, "channels.column", "policy", "digest: 0 7 * * sat")
    with pytest.raises(SettingsError, match=r"channels\.column\.policy: a digest is for readers"):
        settings.load(config)
    set_key(config, "channels.column", "policy", "immediately")
    set_key(config, "channels.column", "embargo", "the weekend")
    with pytest.raises(SettingsError, match=r"channels\.column\.embargo: cannot read"):
        settings.load(config)
    set_key(config, "channels.column", "embargo", "next saturday 00:01")
    assert settings.load(config).channels.column.embargo == "next saturday 00:01"


def test_weekday_words_on_a_tuesday_as_the_readme_says() -> None:
    tuesday = utc(2026, 11, 24, 15)  # Tuesday 24 November 2026, 10:00 EST
    assert parse_time("saturday 00:01", TORONTO, tuesday) == utc(2026, 11, 28, 5, 1)
    assert parse_time("next saturday 00:01", TORONTO, tuesday) == utc(2026, 12, 5, 5, 1)
    # On Saturday itself, before 00:01 is out of reach, so "saturday" is a week on.
    saturday = utc(2026, 11, 28, 15)
    assert parse_time("saturday 00:01", TORONTO, saturday) == utc(2026, 12, 5, 5, 1)
    assert parse_time("next saturday 00:01", TORONTO, saturday) == utc(2026, 12, 12, 5, 1)
    assert parse_time("saturday 23:00", TORONTO, saturday) == utc(2026, 11, 29, 4)
    # The README's schedule example, typed on any day: the embargo read from the send time is
    # the Saturday after Monday's column.
    for day in range(23, 30):
        now = utc(2026, 11, day, 15)
        monday = parse_time("monday 06:00", TORONTO, now)
        release = parse_time("saturday 00:01", TORONTO, monday)
        assert monday < release and (release - monday).days == 4
