"""Send policies per channel, with a clock moved by hand: immediately, a time of day or cron in
the author's zone, a digest at the cron time, and manual approval."""

from __future__ import annotations

from pathlib import Path

import pytest

from syndicate import db
from syndicate.errors import SyndicateError
from syndicate.models import Channel, SendState
from syndicate.runtime import Runtime
from syndicate.scheduling import jobs, send_control
from tests.support.scheduling import Blog, configure, outbox, readers, sent_to, utc
from tests.support.scheduling import sends as all_sends


def start(project: Path, **keys: object):
    """A blog with one old post (recorded on the first run, never mailed) and the settings."""
    blog = Blog(project)
    blog.publish("Back catalogue")
    cfg = configure(project, feed__first_run="none", **keys)
    engine = db.connect(cfg.database_url)
    jobs.run_once(Runtime(cfg, engine=engine), at=utc(2026, 11, 23, 12))
    return blog, cfg, engine


def test_immediately_sends_both_channels_on_the_tick_that_finds_the_post(project: Path) -> None:
    blog, cfg, engine = start(project)
    assert outbox(project) == []
    blog.publish("Fresh post")
    report = jobs.run_once(Runtime(cfg, engine=engine), at=utc(2026, 11, 24, 15))
    assert sorted((s.channel.value, s.sent) for s in report.summaries) == [
        ("column", 2),
        ("newsletter", readers(project)),
    ]
    assert [s.policy for s in all_sends(engine)] == ["immediately", "immediately"]


def test_cron_policy_waits_for_tuesday_0700_in_the_authors_zone(project: Path) -> None:
    blog, cfg, engine = start(
        project, newsletter__policy="cron: 0 7 * * tue", column__policy="at 06:00"
    )
    blog.publish("Weekly essay")
    # Found on Wednesday 25 November 2026 at 10:00 Toronto time (15:00 UTC).
    report = jobs.run_once(Runtime(cfg, engine=engine), at=utc(2026, 11, 25, 15))
    assert report.summaries == []
    by_channel = {s.channel: s for s in all_sends(engine)}
    # EST is UTC-5: Tuesday 1 December 07:00 = 12:00 UTC; Thursday 06:00 = 11:00 UTC.
    assert db.as_utc(by_channel["newsletter"].scheduled_at) == utc(2026, 12, 1, 12)
    assert db.as_utc(by_channel["column"].scheduled_at) == utc(2026, 11, 26, 11)

    assert jobs.tick(Runtime(cfg, engine=engine), at=utc(2026, 11, 26, 10, 59)).summaries == []
    column = jobs.tick(Runtime(cfg, engine=engine), at=utc(2026, 11, 26, 11)).summaries
    assert [(s.channel.value, s.sent) for s in column] == [("column", 2)]
    assert jobs.tick(Runtime(cfg, engine=engine), at=utc(2026, 12, 1, 11, 59)).summaries == []
    newsletter = jobs.tick(Runtime(cfg, engine=engine), at=utc(2026, 12, 1, 12)).summaries
    assert [(s.channel.value, s.sent) for s in newsletter] == [("newsletter", readers(project))]
    assert jobs.tick(Runtime(cfg, engine=engine), at=utc(2026, 12, 8, 12)).summaries == []


def test_digest_sends_one_edition_with_every_new_post_and_nothing_when_nothing_is_new(
    project: Path,
) -> None:
    blog, cfg, engine = start(
        project, newsletter__policy="digest: 0 7 * * sat", column__enabled=False
    )
    blog.publish("Monday thoughts")
    jobs.run_once(Runtime(cfg, engine=engine), at=utc(2026, 11, 23, 20))
    blog.publish("Thursday thoughts")
    jobs.run_once(Runtime(cfg, engine=engine), at=utc(2026, 11, 26, 20))
    assert all_sends(engine) == []  # nothing goes out per post

    # Saturday 28 November 07:00 EST = 12:00 UTC.
    assert jobs.tick(Runtime(cfg, engine=engine), at=utc(2026, 11, 28, 11, 59)).summaries == []
    report = jobs.tick(Runtime(cfg, engine=engine), at=utc(2026, 11, 28, 12, 0, 30))
    assert [s.sent for s in report.summaries] == [readers(project)]
    messages = outbox(project)
    assert len(messages) == readers(project)
    subject = str(messages[0]["Subject"])
    assert subject == "2 new posts from Notes from the Margin"
    body = messages[0].get_body(("plain",)).get_content()
    assert "Monday thoughts" in body and "Thursday thoughts" in body
    assert "Back catalogue" not in body
    html = messages[0].get_body(("html",)).get_content()
    assert "https://blog.example.com/2/" in html and "/unsubscribe/" in html

    with engine.connect() as conn:  # the digest itself never counts as the latest post
        assert db.posts.find_post(conn, "latest").title == "Thursday thoughts"

    # A week with nothing new: no digest at all.
    jobs.run_once(Runtime(cfg, engine=engine), at=utc(2026, 12, 4, 20))
    assert jobs.tick(Runtime(cfg, engine=engine), at=utc(2026, 12, 5, 12, 1)).summaries == []
    # The week after, one post: a digest of one.
    blog.publish("December post")
    jobs.run_once(Runtime(cfg, engine=engine), at=utc(2026, 12, 7, 20))
    report = jobs.tick(Runtime(cfg, engine=engine), at=utc(2026, 12, 12, 12, 1))
    assert [s.post_title for s in report.summaries] == ["December post"]
    with engine.connect() as conn:
        digests = all_sends(engine)
        assert [len(db.sends.digest_members(conn, s.id)) for s in digests] == [2, 1]

    # A post the author schedules by hand leaves the digest queue: it is not sent twice.
    blog.publish("Urgent")
    jobs.run_once(Runtime(cfg, engine=engine), at=utc(2026, 12, 14, 20))
    with engine.connect() as conn:
        urgent = db.posts.find_post(conn, "latest")
    send_control.schedule(engine, urgent.id, Channel.NEWSLETTER, utc(2026, 12, 14, 21))
    report = jobs.tick(Runtime(cfg, engine=engine), at=utc(2026, 12, 19, 12, 1))
    assert [s.post_title for s in report.summaries] == ["Urgent"]
    assert jobs.tick(Runtime(cfg, engine=engine), at=utc(2026, 12, 26, 12, 1)).summaries == []

    # A post readers already got in a digest cannot be scheduled on its own again.
    with engine.connect() as conn:
        monday = db.posts.find_post(conn, "https://blog.example.com/2/")
    assert monday is not None and monday.title == "Monday thoughts"
    with pytest.raises(SyndicateError, match="part of digest send"):
        send_control.schedule(engine, monday.id, Channel.NEWSLETTER, utc(2026, 12, 27, 12))


def test_manual_policy_emails_a_preview_and_sends_nothing_until_approved(project: Path) -> None:
    blog, cfg, engine = start(project, newsletter__policy="manual", column__enabled=False)
    blog.publish("Needs a look")
    report = jobs.run_once(Runtime(cfg, engine=engine), at=utc(2026, 11, 24, 15))
    assert report.summaries == [] and report.previews == 1
    [preview] = outbox(project)
    assert preview["To"].addresses[0].addr_spec == "jane@example.com"
    assert str(preview["Subject"]).startswith("Approve? Needs a look")
    [send] = all_sends(engine)
    assert send.state == SendState.AWAITING_APPROVAL.value
    assert send.approval_requested_at is not None

    # Ticks go by: nothing goes out, and the preview is not sent twice.
    for hour in (16, 17, 18):
        assert (
            jobs.run_once(Runtime(cfg, engine=engine), at=utc(2026, 11, 24, hour)).summaries == []
        )
    assert len(outbox(project)) == 1

    send_control.approve(engine, send.id, by="command")
    report = jobs.tick(Runtime(cfg, engine=engine), at=utc(2026, 11, 24, 19))
    assert [s.sent for s in report.summaries] == [readers(project)]
    assert len(sent_to(project, "Needs a look")) == readers(project) + 1


def test_a_broken_digest_template_keeps_posts_queued_and_other_sends_going(
    project: Path, caplog
) -> None:
    blog, cfg, engine = start(project, newsletter__policy="digest: 0 7 * * sat")
    (project / "templates" / "email" / "digest.html.j2").write_text("{{ no_such_thing.title }}")
    blog.publish("Column goes, digest waits")
    found = jobs.run_once(Runtime(cfg, engine=engine), at=utc(2026, 11, 27, 12))
    assert [s.channel.value for s in found.summaries] == ["column"]
    blog.publish("Second column")
    jobs.poll_feed(Runtime(cfg, engine=engine), at=utc(2026, 11, 28, 12, 29))
    report = jobs.tick(Runtime(cfg, engine=engine), at=utc(2026, 11, 28, 12, 30))
    assert [s.post_title for s in report.summaries] == ["Second column"]  # its column
    assert "could not make the digest" in caplog.text
    with engine.connect() as conn:
        assert len(db.sends.digest_queue(conn)) == 2
    (project / "templates" / "email" / "digest.html.j2").unlink()
    (project / "templates" / "email" / "digest.html.j2").write_bytes(
        (Path(__file__).parent.parent / "templates" / "email" / "digest.html.j2").read_bytes()
    )
    report = jobs.tick(Runtime(cfg, engine=engine), at=utc(2026, 11, 28, 12, 31))
    assert [s.post_title for s in report.summaries] == ["2 new posts from Notes from the Margin"]
