"""The author's commands: sends list, schedule, hold, approve, cancel, reschedule, status; and a
cancel that arrives while a send is going out over real SMTP."""

from __future__ import annotations

import json
from pathlib import Path

from syndicate import db, settings
from syndicate.models import DeliveryState, SendState
from syndicate.runtime import Runtime
from syndicate.scheduling import jobs, send_control
from tests.support.cli import ok, run_cli
from tests.support.project import set_setting
from tests.support.scheduling import configure, utc
from tests.support.scheduling import sends as all_sends


def smtp_one_at_a_time(project: Path, port: int) -> settings.Settings:
    """Readers only, over SMTP to the test's server, one message per batch."""
    configure(
        project,
        column__enabled=False,
        transport__kind="smtp",
        **{
            "transport.smtp__host": "127.0.0.1",
            "transport.smtp__security": "none",
            "transport.smtp__batch_size": 1,
        },
    )
    set_setting(project / "settings.toml", "port = 587", f"port = {port}")
    return configure(project)


def test_author_commands_change_sends_and_echo_times_unambiguously(project: Path) -> None:
    configure(project, newsletter__policy="manual", column__policy="cron: 0 7 * * mon")
    first = ok(project, "run", "--once")
    assert "1 preview(s) emailed to jane@example.com" in first
    listed = {s["channel"]: s for s in json.loads(ok(project, "sends", "list", "--json"))}
    newsletter, column = listed["newsletter"]["id"], listed["column"]["id"]
    assert listed["newsletter"]["state"] == "awaiting_approval"
    assert listed["column"]["state"] == "scheduled" and listed["column"]["policy"].startswith(
        "cron"
    )

    moved = ok(project, "reschedule", str(column), "--at", "2031-01-07 07:00")
    assert "Tuesday 7 January 2031, 07:00 EST (UTC-05:00) = 2031-01-07 12:00 UTC" in moved
    assert "held" in ok(project, "hold", str(column))
    assert "approved" in ok(project, "approve", str(column))
    embargoed = ok(
        project,
        "schedule",
        "latest",
        "--channel",
        "column",
        "--at",
        "2031-01-06 09:00",
        "--embargo",
        "2031-01-11 00:01",
    )
    assert "rescheduled" in embargoed
    assert "embargo until Saturday 11 January 2031, 00:01 EST" in embargoed

    cancelled = ok(project, "cancel", str(newsletter))
    assert "cancelled; 0 message(s) had been delivered" in cancelled
    refused = run_cli(project, "approve", str(newsletter))
    assert refused.returncode == 1 and "was cancelled; cannot approve it" in refused.stderr
    bad_time = run_cli(project, "reschedule", str(column), "--at", "someday")
    assert bad_time.returncode == 1 and "tomorrow 07:00" in bad_time.stderr
    missing = run_cli(project, "hold", "99")
    assert missing.returncode == 1 and "there is no send 99" in missing.stderr

    status = json.loads(ok(project, "status", "--json"))
    assert [s["id"] for s in status["upcoming"]] == [column]
    assert status["upcoming"][0]["embargo_until"] == "2031-01-11T05:01:00+00:00"
    assert [s["state"] for s in status["recent"]] == ["cancelled"]
    assert status["daemon"] is None
    table = ok(project, "status")
    assert "Upcoming sends" in table and "Recent sends" in table and "Daemon: not running" in table
    assert "Sends (times in America/Toronto)" in ok(project, "sends", "list")


def test_cancel_during_a_send_stops_after_the_current_message(project: Path, smtp_server) -> None:
    controller, handler = smtp_server
    cfg = smtp_one_at_a_time(project, controller.port)
    engine = db.connect(cfg.database_url)

    original = handler.handle_DATA

    async def cancel_on_second_message(server, session, envelope):
        reply = await original(server, session, envelope)
        if len(handler.messages) == 2:  # the author runs `syndicate cancel 1` right now
            send_control.cancel(engine, 1)
        return reply

    handler.handle_DATA = cancel_on_second_message
    report = jobs.run_once(Runtime(cfg, engine=engine), at=utc(2026, 11, 27, 12))
    assert [s.sent for s in report.summaries] == [2]
    assert len(handler.messages) == 2
    [send] = all_sends(engine)
    assert send.state == SendState.CANCELLED.value
    assert (send.count(DeliveryState.SENT), send.count(DeliveryState.PENDING)) == (2, 2)
    assert jobs.tick(Runtime(cfg, engine=engine), at=utc(2026, 11, 27, 13)).summaries == []
    assert len(handler.messages) == 2
    done = run_cli(project, "cancel", "1")
    assert done.returncode == 0 and "2 message(s) had been delivered" in done.stdout


def test_hold_during_a_send_then_approve_finishes_it_without_duplicates(
    project: Path, smtp_server
) -> None:
    controller, handler = smtp_server
    cfg = smtp_one_at_a_time(project, controller.port)
    engine = db.connect(cfg.database_url)
    original = handler.handle_DATA

    async def hold_on_first_message(server, session, envelope):
        reply = await original(server, session, envelope)
        if len(handler.messages) == 1:
            send_control.hold(engine, 1)
        return reply

    handler.handle_DATA = hold_on_first_message
    jobs.run_once(Runtime(cfg, engine=engine), at=utc(2026, 11, 27, 12))
    assert len(handler.messages) == 1
    assert all_sends(engine)[0].state == SendState.HELD.value
    assert jobs.tick(Runtime(cfg, engine=engine), at=utc(2026, 11, 27, 13)).summaries == []

    send_control.approve(engine, 1, by="command")
    report = jobs.tick(Runtime(cfg, engine=engine), at=utc(2026, 11, 27, 14))
    assert [s.sent for s in report.summaries] == [3]
    recipients = [r.rcpt_tos[0] for r in handler.messages]
    assert len(recipients) == 4 and len(set(recipients)) == 4
    assert all_sends(engine)[0].state == SendState.DONE.value
