"""Readers who had a post in a digest hear of its correction too (`corrections = "notice"`),
threaded under the digest they received: not only readers of a post's own newsletter."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from syndicate import db
from syndicate.corrections import control
from syndicate.models import DeliveryState
from syndicate.runtime import Runtime
from syndicate.scheduling import jobs
from tests.test_corrections_flow import (  # noqa: F401 (the fixture)
    BODY,
    T1,
    column_sent,
    feed,
    messages,
    poll,
)


def test_digest_readers_get_the_note_threaded_under_their_digest(
    project: Path,
    smtp_server,
    feed,  # noqa: F811
) -> None:
    controller, handler = smtp_server
    cfg, engine, _report = column_sent(
        project,
        controller.port,
        feed,
        newsletter__policy="digest: 0 7 * * sat",
        newsletter__corrections="notice",
    )
    assert len(messages(handler, "Column: Walls and words")) == 2  # the editors, at once

    saturday = T1 + timedelta(days=8)  # a Saturday 07:00 has passed: the digest goes
    jobs.tick(Runtime(cfg, engine=engine), at=saturday)
    with engine.connect() as conn:
        post = db.posts.find_post(conn, "post-2")
        digest_id = db.sends.digest_send_of(conn, post.id)
        assert digest_id is not None
        readers = {
            d.recipient_id: d.message_id
            for d in db.deliveries.iter_deliveries(conn, digest_id)
            if d.state is DeliveryState.SENT
        }
    digests = {
        m["To"].addresses[0].addr_spec: m
        for m in messages(handler)
        if m["Message-ID"] in set(readers.values())
    }
    assert len(digests) == len(readers) >= 2
    handler.messages.clear()

    feed.posts[2] = ("Walls and words", BODY.replace("in March", "in April"))
    [correction] = poll(cfg, engine, saturday + timedelta(hours=1))
    outcome = control.send(Runtime(cfg, engine=engine), correction.id, at=saturday)
    notes = messages(handler, "Correction: Walls and words")
    assert len(notes) == outcome.readers == len(digests)
    for note in notes:
        reader = note["To"].addresses[0].addr_spec
        assert note["In-Reply-To"] == digests[reader]["Message-ID"]
        assert note["List-Unsubscribe"]
        assert "the post changes the 1st paragraph" in note.get_body(("plain",)).get_content()
