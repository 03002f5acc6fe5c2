"""Finding 2 (issue 11): anyone could get a reader suppressed with a hand-made bounce. Now each
delivery's envelope sender is a signed VERP address, and a bounce counts only when it comes back
to one (envelope recipient, Delivered-To, SendGrid's envelope) or returns our signed
Message-ID, and then only for that delivery's address; any other bounce is recorded as
unverified and never scored."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest

from syndicate import db, tokens
from syndicate import settings as settings_module
from syndicate.inbound import pipeline
from syndicate.inbound.sources import sendgrid
from syndicate.inbound.steps import parse
from syndicate.runtime import Runtime
from syndicate.scheduling import jobs
from tests.conftest import set_setting
from tests.support.hostile_mail import dsn, status_of
from tests.support.inbound import KEY, cli, load, sent_fixtures
from tests.test_inbound_sendgrid import PARSE_SECRET, serve

ZOE = "zoe.perez@example.org"  # reader 2
DAY = datetime(2026, 11, 27, 12, tzinfo=UTC)


base, project = sent_fixtures("trust-bounce")


def verp(project: Path, send_id: int, recipient_id: int, key: bytes | None = None) -> str:
    settings, _, stored_key = load(project)
    token = tokens.make(key or stored_key, "bounce", send_id, recipient_id)
    return tokens.reply_address(settings.mail.reply_address, token)


def three_days(project: Path, make: callable, prefix: str = "", **process) -> None:
    settings, engine, key = load(project)
    for day in range(3):
        raw = make(message_id=f"<{prefix}dsn-{day}@mx.example.org>")
        at = DAY + timedelta(days=day)
        pipeline.process(
            Runtime(settings, engine=engine, key=key), raw, source="test", at=at, **process
        )


def test_a_hand_made_bounce_on_three_days_suppresses_nobody(project: Path) -> None:
    """The attack as written: a multipart/report naming a reader, and one naming an editor."""
    three_days(project, partial(dsn, ZOE))
    three_days(project, partial(dsn, "opinion@dailyherald.example.com"), prefix="e")
    assert status_of(project, ZOE) == {"active"}
    assert status_of(project, "opinion@dailyherald.example.com") == {"active"}
    rows = json.loads(cli(project, "replies", "list", "--kind", "bounce", "--json").stdout)
    assert len(rows) == 6
    assert all("unverified bounce" in r["reason"] for r in rows)
    _, engine, _ = load(project)
    with engine.connect() as conn:
        assert db.bounces.get_bounce_score(conn, ZOE) is None
        assert {db.replies.get_reply(conn, r["id"]).verified for r in rows} == {False}


def test_a_bounce_returning_a_wrongly_signed_or_foreign_message_id_scores_nobody(
    project: Path,
) -> None:
    """Returned Message-IDs of our signed form that we did not make: a wrong MAC, one made with
    another key, and one signed with our key for another installation (a copied database). The
    genuine id, sent the same way, does verify: the check on the others is reached."""
    settings, engine, key = load(project)
    installation = db.meta.installation_id(engine)
    other = "f" * 12 if installation != "f" * 12 else "e" * 12
    real = tokens.message_id(key, installation, 1, 2, "notes.example.com")
    mac = real.split("@")[0].split(".")[-1]
    forged = [
        real.replace(mac, ("b" if mac[0] == "a" else "a") + mac[1:]),
        tokens.message_id(b"another key", installation, 1, 2, "notes.example.com"),
        tokens.message_id(key, other, 1, 2, "notes.example.com"),
    ]
    with engine.connect() as conn:
        genuine = parse.parse(dsn(ZOE, returned_id=real), source="t")
        assert pipeline.classify(conn, genuine, Runtime(settings, key=key)).verified is True
    for number, returned in enumerate(forged):
        three_days(project, partial(dsn, ZOE, returned_id=returned), prefix=f"{number}-")
    assert status_of(project, ZOE) == {"active"}
    rows = json.loads(cli(project, "replies", "list", "--kind", "bounce", "--json").stdout)
    assert len(rows) == 9
    assert all("unverified bounce" in r["reason"] for r in rows)
    with engine.connect() as conn:
        assert db.bounces.get_bounce_score(conn, ZOE) is None


def test_classify_json_says_whether_a_bounce_is_verified(project: Path) -> None:
    forged = cli(project, "inbound", "classify", "--json", stdin=dsn(ZOE))
    assert json.loads(forged.stdout)["verified"] is False
    real = dsn(ZOE, to=verp(project, 1, 2))
    data = json.loads(cli(project, "inbound", "classify", "--json", stdin=real).stdout)
    assert (data["kind"], data["verified"], data["recipient"]) == ("bounce", True, 2)
    assert data["matched_by"] == "verp:To"
    comment = cli(project, "inbound", "classify", "--json", stdin=b"From: a@b.example\n\nhi\n")
    assert json.loads(comment.stdout)["verified"] is None


def test_a_bounce_to_the_verp_envelope_recipient_counts_for_that_delivery_only(
    project: Path,
) -> None:
    """As Postfix pipes it (`inbound receive --recipient ${original_recipient}`); the report
    also names another reader, who is not scored: the VERP address names one delivery."""
    address = verp(project, 1, 2)

    def bounce(mid: str) -> bytes:
        both = dsn(ZOE, message_id=mid)
        return both.replace(
            b"Final-Recipient: rfc822; " + ZOE.encode(),
            b"Final-Recipient: rfc822; d.nakamura@example.net\nAction: failed\nStatus: 5.1.1\n"
            b"\nFinal-Recipient: rfc822; " + ZOE.encode(),
        )

    settings, engine, key = load(project)
    now = db.now()
    for days_ago in (2, 1):
        raw, at = bounce(f"<v{days_ago}@x>"), now - timedelta(days=days_ago)
        pipeline.process(
            Runtime(settings, engine=engine, key=key),
            raw,
            source="t",
            at=at,
            envelope_recipients=(address,),
        )
    result = cli(project, "inbound", "receive", "--recipient", address, stdin=bounce("<v0@x>"))
    assert result.returncode == 0, result.stderr.decode()
    assert status_of(project, ZOE) == {"bounced"}
    assert status_of(project, "d.nakamura@example.net") == {"active"}
    with engine.connect() as conn:
        assert db.bounces.get_bounce_score(conn, "d.nakamura@example.net") is None


def test_delivered_to_and_the_returned_message_id_verify_a_bounce(project: Path) -> None:
    """A Maildir or IMAP copy keeps the VERP address in Delivered-To; a bounce to the plain
    From address still counts when its returned headers carry our signed Message-ID."""
    settings, engine, key = load(project)
    installation = db.meta.installation_id(engine)
    with_header = b"Delivered-To: " + verp(project, 1, 2).encode() + b"\n" + dsn(ZOE)
    with engine.connect() as conn:
        first = pipeline.classify(
            conn, pipeline.parse.parse(with_header, source="t"), Runtime(settings, key=key)
        )
    assert (first.verified, first.recipient_id, first.identity.via) == (
        True,
        2,
        "verp:Delivered-To",
    )
    ours = tokens.message_id(key, installation, 1, 2, "notes.example.com")
    returned = dsn(ZOE, returned_id=ours)
    with engine.connect() as conn:
        second = pipeline.classify(
            conn, pipeline.parse.parse(returned, source="t"), Runtime(settings, key=key)
        )
    assert (second.verified, second.recipient_id, second.identity.via) == (True, 2, "message-id")


def test_forged_or_foreign_verp_tokens_verify_nothing(project: Path) -> None:
    settings, engine, key = load(project)
    for to in (
        verp(project, 1, 2, key=b"not our key"),  # forged
        verp(project, 1, 99),  # signed, but no such delivery
        verp(project, 1, 2).replace("+b1-2-", "+b1-3-"),  # altered
        tokens.reply_address(  # a reader's reply token is not a bounce token
            settings.mail.reply_address, tokens.make(key, "reply", 1, 2)
        ),
    ):
        with engine.connect() as conn:
            result = pipeline.classify(
                conn, pipeline.parse.parse(dsn(ZOE, to=to), source="t"), Runtime(settings, key=key)
            )
        assert result.verified is False, to


def test_inbound_parse_envelope_verifies_a_bounce(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", KEY)
    monkeypatch.setenv("SYNDICATE_INBOUND_PARSE_SECRET", PARSE_SECRET)
    envelope = json.dumps({"to": [verp(project, 1, 2)], "from": ""})
    with serve(lambda: settings_module.load(project / "settings.toml")) as http:
        response = http.post(
            sendgrid.PATH, data={"envelope": envelope}, files={"email": ("m.eml", dsn(ZOE))}
        )
    assert response.status_code == 200, response.text
    [row] = json.loads(cli(project, "replies", "list", "--json").stdout)
    _, engine, _ = load(project)
    with engine.connect() as conn:
        assert db.replies.get_reply(conn, row["id"]).verified is True
        assert db.bounces.get_bounce_score(conn, ZOE).score == 1.0


def test_each_delivery_leaves_with_its_own_bounce_address_and_its_bounce_counts(
    project: Path, smtp_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end over SMTP with `[mail] bounce_address` set: the envelope sender a delivery
    really had is where its bounce comes back, and that bounce is verified."""
    controller, handler = smtp_server
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", KEY)
    monkeypatch.setenv("SYNDICATE_INBOUND_PARSE_SECRET", PARSE_SECRET)
    config = project / "settings.toml"
    set_setting(config, 'bounce_address = ""', 'bounce_address = "bounces@notes.example.com"')
    set_setting(config, 'kind = "outbox"', 'kind = "smtp"')
    set_setting(
        config, 'host = "localhost"\nport = 587', f'host = "127.0.0.1"\nport = {controller.port}'
    )
    set_setting(config, 'security = "starttls"', 'security = "none"')
    settings, engine, _ = load(project)
    with engine.begin() as conn:
        conn.execute(db.schema.deliveries.delete())
        conn.execute(db.schema.sends.update().values(state="scheduled"))
    jobs.run_once(Runtime(settings, engine=engine))
    envelope = {m.rcpt_tos[0]: m.mail_from for m in handler.messages}
    assert envelope[ZOE].startswith("bounces+b")
    assert len(set(envelope.values())) == len(envelope)
    result = cli(project, "inbound", "receive", "--recipient", envelope[ZOE], stdin=dsn(ZOE))
    assert result.returncode == 0, result.stderr.decode()
    with engine.connect() as conn:
        assert db.bounces.get_bounce_score(conn, ZOE).score == 1.0


def test_the_api_path_keeps_the_from_address_and_the_bytes_path_gets_verp(project: Path) -> None:
    from syndicate.delivery import dispatch
    from syndicate.delivery.compose import Composer
    from syndicate.delivery.transports.sendgrid import request_body
    from syndicate.models import Channel, Recipient, RecipientKind
    from syndicate.render import EditionCache, make_environment

    settings, engine, key = load(project)
    with engine.connect() as conn:
        post = db.posts.get_post(conn, 5)
    env = make_environment(settings.path(settings.paths.templates))
    editions = EditionCache(post, Channel.NEWSLETTER, settings, env)
    zoe = Recipient(2, RecipientKind.READER, ZOE, "Zoë")
    sender = dispatch.make_sender(settings, key)
    message = Composer(editions, sender, 1, db.now()).message(7, zoe)
    api = request_body([message], per_recipient_reply=False)
    assert api["from"]["email"] == settings.mail.from_address
    assert message.envelope_from == verp(project, 1, 2)
