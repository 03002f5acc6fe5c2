"""Embargoes are never broken by accident: the one embargo rule, the `send` guard and its
override, what `run`, `sends list` and `status` say about a waiting send, and the times
`schedule`/`reschedule` refuse. The CLI runs in this process on a clock the test moves."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest

from syndicate import db, settings
from syndicate import runtime as runtime_module
from syndicate.db.sends import Send
from syndicate.errors import SettingsError
from syndicate.models import Channel, SendState
from syndicate.runtime import Runtime
from syndicate.scheduling import daemon, embargo, jobs
from tests.support.cli import ok, refused, run_cli
from tests.support.scheduling import Blog, Clock, configure, outbox, readers, set_key, utc
from tests.support.scheduling import sends as all_sends

TUESDAY = utc(2026, 11, 24, 15)  # Tuesday 24 November 2026, 10:00 EST
MONDAY_SEND = utc(2026, 11, 30, 11)  # Monday 30 November, 06:00 EST
SATURDAY_RELEASE = utc(2026, 12, 5, 5, 1)  # Saturday 5 December, 00:01 EST
RELEASE_TEXT = "Saturday 5 December 2026, 00:01 EST (UTC-05:00) = 2026-12-05 05:01 UTC"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """db.now, which every command and every query ask, on a clock we move."""
    moved = Clock(utc(2026, 11, 23, 15))
    monkeypatch.setattr(db.times, "now", moved)
    monkeypatch.setattr(runtime_module, "utc_now", moved)
    return moved


def weekly_column(project: Path, clock: Clock, **keys: object) -> tuple[Blog, settings.Settings]:
    """Readers at once, editors on Monday 06:00 with 'saturday 00:01' as the default embargo; an
    old post recorded on Monday 23 November, a new one found on Tuesday 24 November."""
    blog = Blog(project)
    blog.publish("Old")
    keys = {"column__policy": "cron: 0 6 * * mon", "column__embargo": "saturday 00:01", **keys}
    cfg = configure(project, feed__first_run="none", **keys)
    ok(project, "run", "--once")
    blog.publish("Embargoed column")
    clock.at = TUESDAY
    return blog, cfg


def schedule(channel: str, at: str, embargo: str = "") -> tuple[str, ...]:
    """`syndicate schedule latest` for one channel, at a time, with an embargo if given."""
    return ("schedule", "latest", "--channel", channel, "--at", at) + (
        ("--embargo", embargo) if embargo else ()
    )


def ids(cfg: settings.Settings) -> dict[str, int]:
    return {s.channel: s.id for s in all_sends(db.connect(cfg.database_url))}


# --- the rule ------------------------------------------------------------------------------------


def test_one_rule_decides_what_holds_a_reader_edition_back() -> None:
    own = utc(2026, 12, 1, 12)
    column = Send(
        id=7,
        post_id=1,
        channel=Channel.COLUMN,
        state=SendState.SCHEDULED,
        scheduled_at=own,
        embargo_until=utc(2026, 12, 5, 5, 1),
        created_at=own,
        started_at=None,
        finished_at=None,
        policy="",
        approval_requested_at=None,
        approved_at=None,
        approved_by="",
        embargo_broken_at=None,
    )

    def rule(channel, own_embargo, col, respect=True):
        return embargo.reader_release(channel, own_embargo, col, respect_column=respect)

    # A column draft is never held back: its embargo is the release line printed in it.
    assert rule(Channel.COLUMN, own, column) is None
    # A reader edition waits for the later of its own embargo and its column's.
    assert rule(Channel.NEWSLETTER, own, column) == embargo.Release(column.embargo_until, 7)
    assert rule(Channel.NEWSLETTER, utc(2026, 12, 6), column) == embargo.Release(utc(2026, 12, 6))
    # respect_embargo = false, or a cancelled column, leaves only its own embargo.
    assert rule(Channel.NEWSLETTER, own, column, respect=False) == embargo.Release(own)
    cancelled = replace(column, state=SendState.CANCELLED)
    assert rule(Channel.NEWSLETTER, None, cancelled) is None
    assert rule(Channel.NEWSLETTER, None, None) is None
    assert rule(Channel.NEWSLETTER, None, replace(column, embargo_until=None)) is None
    # Naive datetimes (SQLite) are UTC; it holds until, not at, the release time.
    naive = rule(
        "newsletter", None, replace(column, embargo_until=utc(2026, 12, 5).replace(tzinfo=None))
    )
    assert (
        naive is not None
        and naive.holds(utc(2026, 12, 4, 23, 59))
        and not naive.holds(utc(2026, 12, 5))
    )


# --- run, sends list, status ---------------------------------------------------------------------


def test_a_waiting_reader_edition_is_explained_and_goes_out_at_the_release(
    project: Path, clock: Clock
) -> None:
    _, cfg = weekly_column(project, clock)
    first = ok(project, "run", "--once")
    send = ids(cfg)
    # The default embargo is read from when editors get the column (Monday), so "saturday
    # 00:01" is the Saturday after it, never before it.
    assert (
        f"Send {send['newsletter']} (newsletter) 'Embargoed column' is due but waits for the "
        f"column's embargo (send {send['column']}) until {RELEASE_TEXT}." in first
    )
    assert "Nothing to send." in first
    column = next(s for s in all_sends(db.connect(cfg.database_url)) if s.channel == "column")
    assert db.as_utc(column.scheduled_at) == MONDAY_SEND
    assert db.as_utc(column.embargo_until) == SATURDAY_RELEASE

    listed = ok(project, "sends", "list")
    assert (
        f"Send {send['newsletter']} (newsletter) is waiting for embargo until 2026-12-05 00:01 "
        f"EST: the column's embargo (send {send['column']})." in listed
    )
    row = next(line for line in listed.splitlines() if "newsletter" in line)
    assert "waiting for embargo" in row and "2026-11-24 10:00 EST" in row
    as_json = {s["channel"]: s for s in json.loads(ok(project, "sends", "list", "--json"))}
    assert as_json["newsletter"]["waiting_for_embargo_until"] == "2026-12-05T05:01:00+00:00"
    assert as_json["column"]["waiting_for_embargo_until"] is None  # editors get it Monday

    status = ok(project, "status")
    assert f"Send {send['newsletter']} (newsletter) is waiting for embargo until 2026-12-05" in (
        status
    )
    # Every time in the author's zone, to the minute: "last checked" too.
    assert "(last checked 2026-11-24 10:00 EST)" in status
    assert ".000" not in status and "+00:00" not in status
    status_json = json.loads(ok(project, "status", "--json"))
    waiting = {s["channel"]: s["waiting_for_embargo_until"] for s in status_json["upcoming"]}
    assert waiting == {"newsletter": "2026-12-05T05:01:00+00:00", "column": None}

    # Scheduling the reader edition "now" says at once that readers wait, and for what.
    now = ok(project, *schedule("newsletter", "now"))
    assert (
        f"readers wait for the column's embargo (send {send['column']}) until {RELEASE_TEXT}"
        in (now)
    )

    clock.at = MONDAY_SEND
    monday = ok(project, "run", "--once")
    assert f"Send {send['column']} (column) 'Embargoed column': 2 sent" in monday
    assert "is due but waits for the column's embargo" in monday
    clock.at = utc(2026, 12, 5, 5, 0)  # a minute before the release
    assert "waits for the column's embargo" in ok(project, "run", "--once")
    clock.at = SATURDAY_RELEASE
    released = ok(project, "run", "--once")
    assert (
        f"Send {send['newsletter']} (newsletter) 'Embargoed column': {readers(project)} sent"
        in (released)
    )
    assert "waiting for embargo" not in ok(project, "sends", "list")


def test_the_daemon_says_once_why_a_due_send_waits(
    project: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    _, cfg = weekly_column(project, clock)
    engine = db.connect(cfg.database_url)
    jobs.poll_feed(Runtime(cfg, engine=engine, clock=clock))
    the_daemon = daemon.Daemon(Runtime(cfg, engine=engine, clock=clock))
    the_daemon.lock.acquire()
    try:
        with caplog.at_level(logging.INFO, logger="syndicate.scheduling.daemon"):
            for _ in range(3):
                clock.advance(minutes=1)
                report = the_daemon.job_tick()
                assert report is not None and report.summaries == []
                assert [w.channel for w in report.waiting] == ["newsletter"]
    finally:
        the_daemon.lock.release()
    said = [r.getMessage() for r in caplog.records if "is due but waits" in r.getMessage()]
    assert len(said) == 1 and RELEASE_TEXT in said[0]


# --- send ----------------------------------------------------------------------------------------


def test_send_refuses_an_embargoed_reader_edition_and_breaks_it_only_on_purpose(
    project: Path, clock: Clock
) -> None:
    _, cfg = weekly_column(project, clock)
    ok(project, "run", "--once")
    send = ids(cfg)
    line = refused(project, "send", "latest")
    assert line == (
        f"readers must not get 'Embargoed column' yet: the column's embargo (send "
        f"{send['column']}) until {RELEASE_TEXT}; 'syndicate run' sends it then, or add "
        "--break-embargo to send it now"
    )
    assert outbox(project) == []
    # A test copy and a dry run are not a release.
    assert "Nothing was sent" in ok(project, "send", "latest", "--dry-run")
    assert "sent to me@example.org" in ok(project, "send", "latest", "--test", "me@example.org")
    assert [m["To"].addresses[0].addr_spec for m in outbox(project)] == ["me@example.org"]
    # Editors may get the column at any time before its release.
    assert "2 sent" in ok(project, "send", "latest", "--channel", "column")

    broken = run_cli(project, "send", "latest", "--break-embargo")
    assert broken.returncode == 0, broken.stderr
    assert f"{readers(project)} sent" in broken.stdout
    assert "breaking the column's embargo" in broken.stderr and "--break-embargo" in broken.stderr
    listed = {s["channel"]: s for s in json.loads(ok(project, "sends", "list", "--json"))}
    assert listed["newsletter"]["embargo_broken_at"] == "2026-11-24T15:00:00+00:00"
    assert listed["column"]["embargo_broken_at"] is None
    # Broken once on purpose, an interrupted send resumes without asking again.
    engine = db.connect(cfg.database_url)
    with engine.begin() as conn:
        db.sends.update_send(conn, send["newsletter"], state="sending")
    assert "0 sent" in ok(project, "send", "latest")


def test_send_needs_no_override_once_released_or_when_embargoes_are_not_respected(
    project: Path, clock: Clock
) -> None:
    weekly_column(project, clock)
    assert "is due but waits" in ok(project, "run", "--once")
    clock.at = SATURDAY_RELEASE
    assert f"{readers(project)} sent" in ok(project, "send", "latest")
    listed = {s["channel"]: s for s in json.loads(ok(project, "sends", "list", "--json"))}
    assert listed["newsletter"]["state"] == "done"
    assert listed["newsletter"]["embargo_broken_at"] is None

    # respect_embargo = false: readers get the next post at once, column embargo or not.
    blog = Blog(project)
    blog.items = [(1, "Old"), (2, "Embargoed column"), (3, "Unheld")]
    blog.write()
    configure(project, newsletter__respect_embargo=False)
    relaxed = ok(project, "run", "--once")
    assert "'Unheld'" in relaxed and f"{readers(project)} sent" in relaxed
    assert "is due but waits" not in relaxed


# --- schedule and reschedule ---------------------------------------------------------------------


def test_schedule_refuses_past_times_and_embargoes_before_the_send(
    project: Path, clock: Clock
) -> None:
    _, cfg = weekly_column(project, clock, column__embargo="", newsletter__policy="manual")
    ok(project, "run", "--once")
    send = ids(cfg)
    past = refused(project, *schedule("column", "2020-01-01 07:00"))
    assert past == (
        "the send time '2020-01-01 07:00' is in the past (Wednesday 1 January 2020, 07:00 EST "
        "(UTC-05:00) = 2020-01-01 12:00 UTC); give a time from now on, e.g. 'tomorrow 07:00' or "
        "'+2h', or 'now' to send at once"
    )
    assert "is in the past" in refused(
        project, "reschedule", str(send["column"]), "--at", "today 06:00"
    )
    embargo_past = refused(project, *schedule("column", "now", "2026-11-20 00:01"))
    assert embargo_past.startswith("the embargo '2026-11-20 00:01' is in the past")
    before = refused(project, *schedule("column", "monday 06:00", "2026-11-28 00:01"))
    assert before == (
        f"send {send['column']} (column): the embargo (Saturday 28 November 2026, 00:01 EST "
        "(UTC-05:00) = 2026-11-28 05:01 UTC) is earlier than the send (Monday 30 November 2026, "
        "06:00 EST (UTC-05:00) = 2026-11-30 11:00 UTC), so editors would get the column after "
        "its release time; give an --embargo at or after --at, or an earlier --at"
    )
    # Nothing was changed by any refusal.
    column = next(s for s in all_sends(db.connect(cfg.database_url)) if s.channel == "column")
    assert (db.as_utc(column.scheduled_at), column.embargo_until) == (MONDAY_SEND, None)

    # The README's example, typed on a Tuesday: the embargo is read from the send time.
    example = ok(project, *schedule("column", "monday 06:00", "saturday 00:01"))
    assert "at Monday 30 November 2026, 06:00 EST" in example
    assert f"embargo until {RELEASE_TEXT}" in example
    # Moving the column past its own release time is refused; moving both is fine.
    moved = refused(project, "reschedule", str(send["column"]), "--at", "2026-12-06 07:00")
    assert "is earlier than the send" in moved and "editors would get the column" in moved
    both = ok(
        project,
        "reschedule",
        str(send["column"]),
        "--at",
        "2026-12-06 07:00",
        "--embargo",
        "saturday 00:01",
    )
    assert "embargo until Saturday 12 December 2026, 00:01 EST" in both
    # "now" is never in the past, and the echo says readers wait.
    now = ok(project, *schedule("newsletter", "now"))
    assert "at Tuesday 24 November 2026, 10:00 EST" in now
    now = ok(project, "approve", str(send["newsletter"]))
    assert (
        f"readers wait for the column's embargo (send {send['column']}) until Saturday 12 "
        "December 2026, 00:01 EST"
    ) in now


def test_an_embargo_after_readers_got_the_post_is_refused(project: Path, clock: Clock) -> None:
    weekly_column(project, clock, column__embargo="")
    ok(project, "run", "--once")  # readers get it at once: no embargo yet
    line = refused(project, *schedule("column", "now", "+2d"))
    assert line.startswith("readers started getting this post on Tuesday 24 November 2026, 10:00")
    assert line.endswith(
        "an embargo after that would be broken already: schedule the column without --embargo"
    )


# --- hold and cancel -----------------------------------------------------------------------------


def test_hold_and_cancel_say_when_nothing_changed(project: Path, clock: Clock) -> None:
    _, cfg = weekly_column(project, clock)
    ok(project, "run", "--once")
    column = str(ids(cfg)["column"])
    assert f"Send {column} (column) held; state: held" in ok(project, "hold", column)
    assert f"Send {column} (column) was already held; nothing changed" in ok(
        project, "hold", column
    )
    clock.advance(minutes=5)
    assert f"Send {column} (column) cancelled" in ok(project, "cancel", column)
    clock.advance(minutes=5)
    again = ok(project, "cancel", column)
    assert again.strip() == (
        f"Send {column} (column) was already cancelled on 2026-11-24 10:05 EST; nothing changed "
        "(0 message(s) had been delivered)."
    )
    assert refused(project, "hold", column) == f"send {column} was cancelled; cannot hold it"


# --- the default embargo in settings -------------------------------------------------------------


def test_the_default_embargo_is_a_rule_not_a_fixed_time(project: Path) -> None:
    config = project / "settings.toml"
    for fixed in ("2026-12-05 00:01", "today 18:00", "now"):
        set_key(config, "channels.column", "embargo", fixed)
        with pytest.raises(SettingsError, match="names one fixed time, not a rule"):
            settings.load(config)


def test_a_default_embargo_in_the_repeated_hour_holds_both_sends(
    project: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    blog = Blog(project)
    blog.publish("Old")
    cfg = configure(project, feed__first_run="none", column__embargo="tomorrow 01:30")
    engine = db.connect(cfg.database_url)
    jobs.poll_feed(Runtime(cfg, engine=engine), utc(2026, 10, 30, 12))
    blog.publish("Clocks go back")
    # Found Saturday 31 October 08:00 EDT: "tomorrow 01:30" happens twice on 1 November.
    with caplog.at_level(logging.ERROR, logger="syndicate.feedwatch.watch"):
        report = jobs.run_once(Runtime(cfg, engine=engine), at=utc(2026, 10, 31, 12))
    assert report.summaries == []
    assert {s.channel: s.state for s in all_sends(engine)} == {
        "newsletter": "held",
        "column": "held",
    }
    problems = [r.getMessage() for r in caplog.records]
    assert len(problems) == 2
    assert all("happens twice in America/Toronto" in p and "is held" in p for p in problems)

    # A digest would not know the embargo either: the post gets a held send, not a digest slot.
    configure(project, newsletter__policy="digest: 0 7 * * sun")
    blog.publish("Digest post")
    report = jobs.run_once(
        Runtime(settings.load(project / "settings.toml"), engine=engine),
        at=utc(2026, 10, 31, 12, 5),
    )
    with engine.connect() as conn:
        assert db.sends.digest_queue(conn) == []
    latest = [s for s in all_sends(engine) if s.title == "Digest post"]
    assert {s.channel: s.state for s in latest} == {"newsletter": "held", "column": "held"}
    clock.at = utc(2026, 11, 1, 13)  # Sunday 07:00 EST: the digest time passes, nothing goes
    assert ok(project, "run", "--once").count("Nothing to send.") == 1


def test_a_reader_edition_waits_for_its_own_embargo_too(project: Path, clock: Clock) -> None:
    weekly_column(project, clock, column__embargo="", newsletter__policy="manual")
    ok(project, "run", "--once")
    echoed = ok(project, *schedule("newsletter", "now", "+2d"))
    # "+2d" is read from the send time (now): Thursday 26 November, 10:00 EST.
    assert "embargo until Thursday 26 November 2026, 10:00 EST" in echoed
    newsletter = echoed.split()[1]
    ok(project, "approve", newsletter)
    waits = ok(project, "run", "--once")
    assert f"Send {newsletter} (newsletter) 'Embargoed column' is due but waits for its own " in (
        waits
    )
    assert "embargo until Thursday 26 November 2026, 10:00 EST" in waits
    clock.at = utc(2026, 11, 26, 15)
    assert f"{readers(project)} sent" in ok(project, "run", "--once")


def test_a_digest_leaves_out_a_post_whose_column_is_still_under_embargo(
    project: Path, clock: Clock
) -> None:
    blog, cfg = weekly_column(
        project,
        clock,
        newsletter__policy="digest: 0 7 * * sat",
        column__policy="immediately",
        column__embargo="+5d",
    )
    ok(project, "run", "--once")  # column now (Tuesday), released Sunday 29 November 10:00
    blog.publish("Free post")
    configure(project, column__embargo="")
    clock.at = utc(2026, 11, 25, 15)
    ok(project, "run", "--once")
    engine = db.connect(cfg.database_url)

    def digests() -> list[list[str]]:
        with engine.connect() as conn:
            return [
                [db.posts.get_post(conn, p).title for p in db.sends.digest_members(conn, s.id)]
                for s in all_sends(engine)
                if s.policy.startswith("digest")
            ]

    clock.at = utc(2026, 11, 28, 12)  # Saturday 07:00: the digest is due
    ok(project, "run", "--once")
    assert digests() == [["Free post"]]
    for day in (29, 30):
        clock.at = utc(2026, 11, day, 16)
        ok(project, "run", "--once")
    # Released on Sunday, it waits for the next digest rather than going out alone at once.
    assert digests() == [["Free post"]]
    clock.at = utc(2026, 12, 5, 12)  # Saturday 5 December, 07:00
    ok(project, "run", "--once")
    assert digests() == [["Free post"], ["Embargoed column"]]


def test_a_column_is_not_approved_after_its_embargo_has_passed(project: Path, clock: Clock) -> None:
    weekly_column(project, clock, column__policy="manual", column__embargo="+1d")
    ok(project, "run", "--once")
    column = str(ids(store_settings(project))["column"])
    clock.at = utc(2026, 11, 26, 15)  # Thursday: the embargo (Wednesday 10:00) is gone
    assert refused(project, "approve", column) == (
        f"send {column} (column): its embargo (Wednesday 25 November 2026, 10:00 EST "
        "(UTC-05:00) = 2026-11-25 15:00 UTC) has passed, so the draft would print a release "
        f"time already gone; give it a new one with 'syndicate reschedule {column} --at now "
        "--embargo …', then approve it"
    )
    ok(project, "reschedule", column, "--at", "now", "--embargo", "+1d")
    assert "approved" in ok(project, "approve", column)
    assert "2 sent" in ok(project, "run", "--once")


def store_settings(project: Path) -> settings.Settings:
    return settings.load(project / "settings.toml")
