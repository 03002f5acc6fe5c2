"""Embargo: a reader edition never leaves before the column's release time."""

from __future__ import annotations

from pathlib import Path

from syndicate import db
from syndicate.models import Channel
from syndicate.runtime import Runtime
from syndicate.scheduling import jobs, send_control
from tests.support.scheduling import Blog, configure, readers, utc
from tests.support.scheduling import sends as all_sends


def setup(project: Path, **keys: object):
    blog = Blog(project)
    blog.publish("Old")
    cfg = configure(project, feed__first_run="none", **keys)
    engine = db.connect(cfg.database_url)
    jobs.run_once(Runtime(cfg, engine=engine), at=utc(2026, 11, 23, 12))
    return blog, cfg, engine


def test_reader_edition_held_back_by_the_column_embargo_and_released_after_it(
    project: Path,
) -> None:
    blog, cfg, engine = setup(project, column__embargo="saturday 00:01")
    blog.publish("Embargoed column")
    # Found Tuesday 24 November 10:00 EST; newsletter policy is "immediately".
    first = jobs.run_once(Runtime(cfg, engine=engine), at=utc(2026, 11, 24, 15))
    assert [(s.channel.value, s.sent) for s in first.summaries] == [("column", 2)]
    column = next(s for s in all_sends(engine) if s.channel == "column")
    # Saturday 28 November 00:01 EST = 05:01 UTC.
    assert db.as_utc(column.embargo_until) == utc(2026, 11, 28, 5, 1)

    assert jobs.tick(Runtime(cfg, engine=engine), at=utc(2026, 11, 27, 12)).summaries == []
    assert jobs.tick(Runtime(cfg, engine=engine), at=utc(2026, 11, 28, 5, 0)).summaries == []
    released = jobs.tick(Runtime(cfg, engine=engine), at=utc(2026, 11, 28, 5, 1))
    assert [(s.channel.value, s.sent) for s in released.summaries] == [
        ("newsletter", readers(project))
    ]


def test_embargo_given_by_hand_and_respect_can_be_switched_off(project: Path) -> None:
    blog, cfg, engine = setup(
        project, newsletter__policy="manual", column__policy="cron: 0 7 * * mon"
    )
    blog.publish("By hand")
    jobs.run_once(Runtime(cfg, engine=engine), at=utc(2026, 11, 24, 15))
    with engine.connect() as conn:
        post = db.posts.find_post(conn, "latest")
    assert post is not None and post.id is not None
    send_control.schedule(
        engine, post.id, Channel.COLUMN, utc(2026, 11, 24, 16), embargo=utc(2026, 11, 26, 12)
    )
    newsletter = next(s for s in all_sends(engine) if s.channel == "newsletter")
    send_control.approve(engine, newsletter.id, by="command")
    report = jobs.tick(Runtime(cfg, engine=engine), at=utc(2026, 11, 25, 12))
    assert [s.channel.value for s in report.summaries] == ["column"]

    # With respect_embargo = false the reader edition goes at once.
    relaxed = configure(project, newsletter__respect_embargo=False)
    report = jobs.tick(Runtime(relaxed, engine=engine), at=utc(2026, 11, 25, 12, 1))
    assert [s.channel.value for s in report.summaries] == ["newsletter"]


def test_a_cancelled_column_no_longer_holds_readers_back(project: Path) -> None:
    blog, cfg, engine = setup(project, column__embargo="+3d", column__policy="manual")
    blog.publish("Column dropped")
    assert jobs.run_once(Runtime(cfg, engine=engine), at=utc(2026, 11, 24, 15)).summaries == []
    column = next(s for s in all_sends(engine) if s.channel == "column")
    send_control.cancel(engine, column.id)
    report = jobs.tick(Runtime(cfg, engine=engine), at=utc(2026, 11, 24, 15, 1))
    assert [s.channel.value for s in report.summaries] == ["newsletter"]
