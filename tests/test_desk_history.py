"""The author's answers and every subscriber status change live in tables of their own
(`reply_answers`, `recipient_status_changes`), written by the functions every path uses, and
the revision that adds them (`…_desk_tables.py`) moves what older desks kept as JSON in `meta`
into them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, insert, select

from syndicate import db, tokens
from syndicate.audience import subscribers
from syndicate.db.status_changes import ChangedBy
from syndicate.models import RecipientKind, RecipientStatus
from tests.support.desk import SAME, client_for, login, sent_desk
from tests.support.inbound import load

AT = datetime(2026, 11, 30, 14, 5, tzinfo=UTC)


def database_before_the_desk_tables(path: Path) -> str:
    """A database at the revision before the one that adds the desk's tables."""
    url = f"sqlite:///{path}"
    engine = create_engine(url)
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(db.migrate.MIGRATIONS))
        config.attributes["connection"] = conn
        [ours] = [
            r
            for r in ScriptDirectory.from_config(config).walk_revisions()
            if r.path.endswith("_desk_tables.py")
        ]
        command.upgrade(config, str(ours.down_revision))
    engine.dispose()
    return url


def test_the_desk_tables_revision_moves_the_json_out_of_meta_and_keeps_what_it_cannot_read(
    tmp_path: Path,
) -> None:
    url = database_before_the_desk_tables(tmp_path / "old.db")
    schema = db.schema
    old = create_engine(url)
    with old.begin() as conn:
        conn.execute(
            insert(schema.recipients).values(
                id=7,
                kind="reader",
                email="ann@example.com",
                email_key="ann@example.com",
                status="active",
                created_at=AT,
                updated_at=AT,
            )
        )
        conn.execute(
            insert(schema.replies).values(
                id=3, received_at=AT, kind="comment", sender="ann@example.com", raw=b"x"
            )
        )
        answers = [
            {
                "at": "2026-11-30T14:05:00+00:00",
                "to": "ann@example.com",
                "message_id": "<a1@x>",
                "text": "Thank you.",
            },
            {
                "at": "2026-12-01T09:00:00+00:00",
                "to": "ann@example.com",
                "message_id": "<a2@x>",
                "text": "And again.",
            },
        ]
        changes = [
            {
                "at": "2026-11-30T15:00:00+00:00",
                "from": "active",
                "to": "unsubscribed",
                "reason": "by the author, on the desk",
            },
            {
                "at": "2026-11-30T16:00:00+00:00",
                "from": "unsubscribed",
                "to": "active",
                "reason": "by the author, on the desk",
            },
        ]
        kept = {
            "desk_answers:3": json.dumps(answers),
            "desk_status_log:7": json.dumps(changes),
            "desk_answers:99": json.dumps(answers[:1]),  # its reply is gone
            "desk_status_log:8": "{not json",  # unreadable
        }
        for key, value in kept.items():
            conn.execute(insert(schema.meta).values(key=key, value=value))
        conn.execute(insert(schema.meta).values(key="deskXanswers:5", value="[]"))  # not ours
        conn.execute(
            insert(schema.feed_state).values(
                source="https://blog.example.com/feed/", etag='"v1"', checked_at=AT
            )
        )
    old.dispose()

    engine = db.connect(url)  # upgrades to the head
    with engine.connect() as conn:
        assert db.migrate.current(conn) == db.migrate.HEAD
        moved = db.answers.answers_to(conn, 3)
        history = db.status_changes.changes_of(conn, 7)
        left = dict(conn.execute(select(schema.meta.c.key, schema.meta.c.value)).all())
    assert [(a.sent_at, a.to_address, a.message_id, a.body) for a in moved] == [
        (AT, "ann@example.com", "<a1@x>", "Thank you."),
        (datetime(2026, 12, 1, 9, tzinfo=UTC), "ann@example.com", "<a2@x>", "And again."),
    ]
    assert [(c.from_status, c.to_status, c.by, c.reason) for c in history] == [
        (
            RecipientStatus.ACTIVE,
            RecipientStatus.UNSUBSCRIBED,
            ChangedBy.AUTHOR,
            "by the author, on the desk",
        ),
        (
            RecipientStatus.UNSUBSCRIBED,
            RecipientStatus.ACTIVE,
            ChangedBy.AUTHOR,
            "by the author, on the desk",
        ),
    ]
    assert history[0].at == datetime(2026, 11, 30, 15, tzinfo=UTC)
    assert "desk_answers:3" not in left and "desk_status_log:7" not in left
    assert left["desk_answers:99"] == kept["desk_answers:99"]
    assert left["desk_status_log:8"] == "{not json"
    assert left["deskXanswers:5"] == "[]"
    # The feed's last check before the upgrade is its first recorded one.
    with engine.connect() as conn:
        [first] = db.feed_checks.recent_checks(conn, "https://blog.example.com/feed/")
    assert (first.checked_at, first.outcome.value, first.error) == (AT, "ok", "")


@pytest.fixture
def desk_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return sent_desk(tmp_path / "project", monkeypatch)


def test_every_way_a_status_changes_is_in_the_persons_history(
    desk_project: Path, tmp_path: Path
) -> None:
    _, engine, key = load(desk_project)
    address = "margaret.holloway@example.com"
    with engine.connect() as conn:
        [who] = [r for r in db.recipients.recipients_by_email(conn, address) if r.kind == "reader"]
    rid = who.id
    client = client_for(desk_project)
    csrf = login(client)

    def desk(action: str) -> None:
        answer = client.post(f"/desk/subscribers/{rid}/{action}", data={"csrf": csrf}, headers=SAME)
        assert answer.status_code == 200, answer.text

    # 1. the author, on the desk; 2. the author brings them back
    desk("unsubscribe")
    desk("resubscribe")
    # 3. the reader's own unsubscribe link
    token = tokens.make(key, "unsubscribe", 1, rid)
    assert subscribers.unsubscribe_with_token(engine, key, token, how="link").changed
    # 4. the reader confirms a subscription on the web again
    with engine.begin() as conn:
        assert (
            db.recipients.confirm_subscription(conn, RecipientKind.READER, address, "")
            == "reactivated"
        )
    # 5. their mail system: a bounce suppresses them (the bounce step's call)
    with engine.begin() as conn:
        assert db.recipients.mark_recipient(conn, rid, RecipientStatus.BOUNCED, "5.1.1 unknown")
    desk("resubscribe")
    # 6. another tool's export says they unsubscribed there
    export = tmp_path / "mailchimp_unsubscribed.csv"
    export.write_text(
        '"Email Address","First Name","Last Name","UNSUB_TIME","UNSUB_REASON"\n'
        f'"{address}","Margaret","Holloway","2026-11-30 12:00:00","NORMAL"\n',
        encoding="utf-8",
    )
    report = subscribers.import_file(engine, export, RecipientKind.READER)
    assert report.newly_suppressed == 1
    # Nothing changed, nothing recorded: unsubscribing someone already unsubscribed.
    with engine.begin() as conn:
        assert not db.recipients.mark_recipient(conn, rid, RecipientStatus.UNSUBSCRIBED, "again")

    with engine.connect() as conn:
        history = db.status_changes.changes_of(conn, rid)
        assert db.meta.get_meta(conn, f"desk_status_log:{rid}") is None
    assert [(c.from_status.value, c.to_status.value, c.by.value) for c in history] == [
        ("active", "unsubscribed", "author"),
        ("unsubscribed", "active", "author"),
        ("active", "unsubscribed", "reader"),
        ("unsubscribed", "active", "reader"),
        ("active", "bounced", "bounce"),
        ("bounced", "active", "author"),
        ("active", "unsubscribed", "import"),
    ]
    assert history[2].reason == "link (send 1)"
    assert history[4].reason == "5.1.1 unknown"
    page = client.get(f"/desk/subscribers/{rid}").text
    assert page.count('<li class="status-change">') == 7
    assert 'active → bounced, 5.1.1 unknown <span class="tag">by bounce</span>' in page
