"""Dispatch over real transports: an aiosmtpd server on 127.0.0.1, and the outbox folder."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from pathlib import Path

from sqlalchemy import select, update

from syndicate import db, settings, tokens
from syndicate.models import DeliveryState, RecipientKind, RecipientStatus, SendState
from syndicate.runtime import Runtime
from syndicate.scheduling import jobs
from tests.conftest import set_setting


def use_smtp(project: Path, port: int) -> settings.Settings:
    config = project / "settings.toml"
    set_setting(config, 'kind = "outbox"', 'kind = "smtp"')
    set_setting(config, 'host = "localhost"\nport = 587', f'host = "127.0.0.1"\nport = {port}')
    set_setting(config, 'security = "starttls"', 'security = "none"')
    set_setting(config, "batch_size = 100", "batch_size = 2")
    set_setting(config, "connections = 2", "connections = 1")
    return settings.load(config)


def test_smtp_delivers_every_message_over_one_connection(project: Path, smtp_server) -> None:
    controller, handler = smtp_server
    cfg = use_smtp(project, controller.port)
    engine = db.connect(cfg.database_url)
    report = jobs.run_once(Runtime(cfg, engine=engine))
    key = db.meta.hmac_key(engine, cfg.hmac_key_from_env())
    assert [s.sent for s in report.summaries] == [4, 2]
    assert len(handler.messages) == 6
    # One connection per send (the transport is reused across batches of 2).
    assert len(handler.sessions) == 2
    parser = BytesParser(policy=policy.default)
    for received in handler.messages:
        msg = parser.parsebytes(received.data)
        assert received.rcpt_tos == [msg["To"].addresses[0].addr_spec]
        # VERP: each delivery's bounces come back to its own signed address.
        token = tokens.token_from_address(received.mail_from)
        claim = tokens.verify(key, token or "", "bounce")
        assert received.mail_from.startswith("replies+b") and claim is not None
        with engine.connect() as conn:
            address = db.deliveries.delivery_address(conn, claim.send_id, claim.recipient_id)
        assert address == received.rcpt_tos[0]
        assert msg.get_body(("html",)) is not None
    again = jobs.run_once(Runtime(cfg, engine=engine))
    assert again.summaries == [] and len(handler.messages) == 6


def test_permanent_refusal_fails_that_delivery_and_marks_the_address_bounced(
    project: Path, smtp_server
) -> None:
    controller, handler = smtp_server
    handler.refuse["d.nakamura@example.net"] = "550 5.1.1 No such user"
    handler.refuse["zoe.perez@example.org"] = "451 4.7.1 Try again later"
    cfg = use_smtp(project, controller.port)
    engine = db.connect(cfg.database_url)
    newsletter = jobs.run_once(Runtime(cfg, engine=engine)).summaries[0]
    assert (newsletter.sent, newsletter.failed, newsletter.deferred) == (2, 1, 1)
    with engine.connect() as conn:
        states = {r.email: (r.state, r.detail) for r in db.deliveries.iter_deliveries(conn, 1)}
        bounced = (
            conn.execute(
                select(db.schema.recipients.c.email).where(
                    db.schema.recipients.c.status == "bounced"
                )
            )
            .scalars()
            .all()
        )
    assert states["d.nakamura@example.net"][0] == "failed"
    assert states["d.nakamura@example.net"][1].startswith("550")
    assert states["zoe.perez@example.org"][0] == "deferred"
    assert bounced == ["d.nakamura@example.net"]

    with engine.connect() as conn:
        retry_at = db.deliveries.next_retry_at(conn, 1)
    assert retry_at is not None and retry_at > db.now()
    # Before its back-off time a run leaves the deferred message alone.
    assert [s.sent for s in jobs.run_once(Runtime(cfg, engine=engine)).summaries] == [0]
    # The temporary refusal clears and the back-off time passes; the next run delivers the
    # deferred message and nobody else.
    del handler.refuse["zoe.perez@example.org"]
    with engine.begin() as conn:
        conn.execute(update(db.schema.deliveries).values(next_attempt_at=db.now()))
    before = len(handler.messages)
    retry = jobs.run_once(Runtime(cfg, engine=engine)).summaries
    assert [(s.send_id, s.sent) for s in retry] == [(1, 1)]
    assert [m.rcpt_tos for m in handler.messages[before:]] == [["zoe.perez@example.org"]]
    with engine.connect() as conn:
        assert db.sends.get_send(conn, 1).state == "done"


def test_unreachable_smtp_server_defers_and_loses_nobody(project: Path) -> None:
    cfg = use_smtp(project, 9)  # nothing listens on the discard port
    engine = db.connect(cfg.database_url)
    report = jobs.run_once(Runtime(cfg, engine=engine))
    assert all(s.sent == 0 for s in report.summaries)
    assert all("cannot connect to SMTP server 127.0.0.1:9" in s.error for s in report.summaries)
    with engine.connect() as conn:
        states = {r.state for r in db.deliveries.iter_deliveries(conn, 1)}
        assert db.sends.get_send(conn, 1).state == "sending"
    assert states <= {"deferred", "pending"}


def test_interrupted_send_resumes_without_skipping_or_doubling(project: Path) -> None:
    cfg = settings.load(project / "settings.toml")
    engine = db.connect(cfg.database_url)
    jobs.sync_lists(Runtime(cfg, engine=engine))
    from syndicate.feedwatch import watch

    watch.poll(engine, cfg)
    # Simulate a crash: two deliveries claimed (in flight), one already sent, the rest pending.
    with engine.begin() as conn:
        db.sends.set_send_state(conn, 1, SendState.SENDING)
        db.deliveries.plan_deliveries(conn, 1, RecipientKind.READER)
        ids = (
            conn.execute(
                select(db.schema.deliveries.c.id)
                .where(db.schema.deliveries.c.send_id == 1)
                .order_by(db.schema.deliveries.c.id)
            )
            .scalars()
            .all()
        )
        conn.execute(
            update(db.schema.deliveries)
            .where(db.schema.deliveries.c.id == ids[0])
            .values(state=DeliveryState.SENT.value)
        )
        conn.execute(
            update(db.schema.deliveries)
            .where(db.schema.deliveries.c.id.in_(ids[1:3]))
            .values(state=DeliveryState.SENDING.value)
        )
    summaries = jobs.run_due_sends(Runtime(cfg, engine=engine))
    newsletter = next(s for s in summaries if s.send_id == 1)
    assert newsletter.sent == 3  # the two in flight plus the one never started
    outbox = sorted(p.name for p in (project / "outbox").glob("*.eml"))
    assert len([n for n in outbox if n.startswith(f"d{ids[0]:07d}")]) == 0
    with engine.connect() as conn:
        assert {r.state for r in db.deliveries.iter_deliveries(conn, 1)} == {"sent"}


def test_unsubscribed_reader_is_skipped_even_though_still_in_csv(project: Path) -> None:
    cfg = settings.load(project / "settings.toml")
    engine = db.connect(cfg.database_url)
    jobs.sync_lists(Runtime(cfg, engine=engine))
    with engine.begin() as conn:
        rid = conn.execute(
            select(db.schema.recipients.c.id).where(
                db.schema.recipients.c.email_key == "zoe.perez@example.org"
            )
        ).scalar_one()
        db.recipients.mark_recipient(
            conn, rid, RecipientStatus.UNSUBSCRIBED, "test: asked to leave"
        )
    jobs.run_once(Runtime(cfg, engine=engine))
    names = [p.name for p in (project / "outbox").glob("*.eml")]
    assert len(names) == 5 and not any("zoe.perez" in n for n in names)
    with engine.connect() as conn:
        status = conn.execute(
            select(db.schema.recipients.c.status).where(db.schema.recipients.c.id == rid)
        ).scalar_one()
    assert status == "unsubscribed"


def test_a_refused_sender_pauses_the_send_and_bounces_nobody(project: Path, smtp_server) -> None:
    """A relay that will not take our From address (an unverified sender identity, say) is a
    configuration problem: every reader stays queued and subscribed."""
    controller, handler = smtp_server

    async def refuse_sender(server, session, envelope, address, options):
        return "550 5.7.1 The from address does not match a verified Sender Identity"

    handler.handle_MAIL = refuse_sender
    cfg = use_smtp(project, controller.port)
    engine = db.connect(cfg.database_url)
    newsletter = jobs.run_once(Runtime(cfg, engine=engine)).summaries[0]
    assert (newsletter.sent, newsletter.failed) == (0, 0)
    assert handler.messages == []
    with engine.connect() as conn:
        statuses = set(conn.execute(select(db.schema.recipients.c.status)).scalars())
        states = {r.state for r in db.deliveries.iter_deliveries(conn, newsletter.send_id)}
        detail = next(db.deliveries.iter_deliveries(conn, newsletter.send_id)).detail
    assert statuses == {"active"}
    assert states <= {"deferred", "pending"}
    assert "refused the sender replies+b1-" in detail  # the delivery's VERP envelope sender
    assert "verified Sender Identity" in detail
