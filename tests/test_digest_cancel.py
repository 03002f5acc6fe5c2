"""A cancelled digest gives its posts back to the author: a post whose digest was cancelled
before it reached anyone can be sent on its own; one that reached readers cannot (they would
get it twice), and the refusal says why."""

from __future__ import annotations

from pathlib import Path

import pytest

from syndicate import db
from syndicate.errors import SyndicateError
from syndicate.models import Channel, SendState
from syndicate.runtime import Runtime
from syndicate.scheduling import jobs, send_control
from tests.support.scheduling import Blog, configure, outbox, readers, utc


def digest_of_two(project: Path):
    """Two posts waiting for Saturday's digest, the digest send made but not yet sent."""
    blog = Blog(project)
    blog.publish("Back catalogue")
    cfg = configure(
        project,
        feed__first_run="none",
        newsletter__policy="digest: 0 7 * * sat",
        column__enabled=False,
    )
    engine = db.connect(cfg.database_url)
    runtime = Runtime(cfg, engine=engine)
    jobs.run_once(runtime, at=utc(2026, 11, 23, 12))
    blog.publish("Monday thoughts")
    blog.publish("Tuesday thoughts")
    jobs.run_once(runtime, at=utc(2026, 11, 24, 20))
    # Saturday 28 November 07:00 EST = 12:00 UTC: the digest send exists, nothing went out.
    [digest_id] = jobs.make_due_digests(runtime, utc(2026, 11, 28, 12, 0, 30))
    with engine.connect() as conn:
        monday = db.posts.find_post(conn, "https://blog.example.com/2/")
    assert monday is not None and monday.title == "Monday thoughts"
    return cfg, engine, digest_id, monday.id


def test_a_post_in_a_live_digest_names_the_command_that_frees_it(project: Path) -> None:
    _, engine, digest_id, monday = digest_of_two(project)
    with pytest.raises(SyndicateError, match=f"'syndicate cancel {digest_id}' first"):
        send_control.schedule(engine, monday, Channel.NEWSLETTER, utc(2026, 11, 28, 13))


def test_a_digest_cancelled_before_it_went_out_lets_its_post_go_alone(project: Path) -> None:
    cfg, engine, digest_id, monday = digest_of_two(project)
    send_control.cancel(engine, digest_id)

    send, created = send_control.schedule(engine, monday, Channel.NEWSLETTER, utc(2026, 11, 28, 13))
    assert created and send.post_id == monday
    with engine.connect() as conn:
        [tuesday] = db.sends.digest_members(conn, digest_id)
        assert tuesday != monday
        assert db.sends.digest_send_of(conn, monday) is None

    report = jobs.tick(Runtime(cfg, engine=engine), at=utc(2026, 11, 28, 13, 1))
    assert [(s.post_title, s.sent) for s in report.summaries] == [
        ("Monday thoughts", readers(project))
    ]
    subjects = {str(m["Subject"]) for m in outbox(project)}
    assert len(outbox(project)) == readers(project)
    assert all("Monday thoughts" in s for s in subjects)


def test_a_digest_cancelled_after_reaching_readers_keeps_its_posts(project: Path) -> None:
    cfg, engine, digest_id, monday = digest_of_two(project)
    report = jobs.tick(Runtime(cfg, engine=engine), at=utc(2026, 11, 28, 12, 1))
    assert [s.sent for s in report.summaries] == [readers(project)]
    with engine.begin() as conn:  # as if the author cancelled it part-way
        db.sends.set_send_state(conn, digest_id, SendState.CANCELLED)

    with pytest.raises(SyndicateError, match=f"reached {readers(project)} reader"):
        send_control.schedule(engine, monday, Channel.NEWSLETTER, utc(2026, 11, 28, 13))
    with engine.connect() as conn:
        assert db.sends.digest_send_of(conn, monday) == digest_id
