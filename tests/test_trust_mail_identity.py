"""Finding 1 (issue 11): a guessed Message-ID and a forged From unsubscribed any reader. Our
Message-IDs are now signed, unique per installation (issue 17) and stable for a retry; a token
or signed Message-ID speaks for a reader only when the mail also comes from their address."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from syndicate import db, tokens
from syndicate import settings as settings_module
from syndicate.delivery import compose, dispatch
from syndicate.inbound import pipeline
from syndicate.inbound.sources import sendgrid
from syndicate.inbound.steps import parse
from syndicate.models import ReplyKind
from syndicate.runtime import Runtime
from tests.support.hostile_mail import forged_reply, status_of
from tests.support.inbound import (
    KEY,
    _make_sent_project,
    cli,
    load,
    sent_fixtures,
)
from tests.test_inbound_sendgrid import PARSE_SECRET, serve

MARGARET = "margaret.holloway@example.com"  # reader 1


base, project = sent_fixtures("trust-identity")


def sent_ids(project: Path) -> dict[str, str]:
    """Message-ID of every edition in the outbox, by the address it went to."""
    found = {}
    for path in sorted((project / "outbox").glob("*.eml")):
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        found[msg["To"].addresses[0].addr_spec] = str(msg["Message-ID"])
    return found


def test_a_guessed_message_id_and_a_forged_from_unsubscribe_nobody_by_pipe(project: Path) -> None:
    """The attack as written: From the reader (forged), In-Reply-To the id we used to make."""
    raw = forged_reply(f"Margaret Holloway <{MARGARET}>", "<syndicate.s1.r1@notes.example.com>")
    result = cli(project, "inbound", "receive", stdin=raw)
    assert result.returncode == 0, result.stderr.decode()
    assert status_of(project, MARGARET) == {"active"}
    [reply] = json.loads(cli(project, "replies", "list", "--json").stdout)
    assert (reply["kind"], reply["recipient"]) == ("unmatched", None)


def test_a_guessed_message_id_unsubscribes_nobody_through_inbound_parse(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", KEY)
    monkeypatch.setenv("SYNDICATE_INBOUND_PARSE_SECRET", PARSE_SECRET)
    raw = forged_reply(f"<{MARGARET}>", "<syndicate.s1.r1@notes.example.com>")
    with serve(lambda: settings_module.load(project / "settings.toml")) as http:
        response = http.post(sendgrid.PATH, files={"email": ("m.eml", raw)})
    assert response.status_code == 200, response.text
    assert response.json()["kind"] == "unmatched"
    assert status_of(project, MARGARET) == {"active"}


def guessed_new_form_ids(project: Path) -> list[str]:
    """Message-IDs of the signed form a stranger can make: the right shape and installation (any
    edition shows both), a MAC that is not ours, or one made with another key."""
    _, engine, key = load(project)
    installation = db.meta.installation_id(engine)
    real = tokens.message_id(key, installation, 1, 1, "notes.example.com")
    mac = real.split("@")[0].split(".")[-1]
    flipped = ("b" if mac[0] == "a" else "a") + mac[1:]
    return [
        real.replace(mac, flipped),  # one character of the MAC changed
        real.replace(mac, "a" * 16),  # a MAC of the right alphabet and length
        tokens.message_id(b"a guessed key", installation, 1, 1, "notes.example.com"),
    ]


def test_guessed_message_ids_of_the_signed_form_match_nobody(project: Path) -> None:
    """The attack on the new form: From the reader, In-Reply-To an id of the right shape with a
    wrong MAC. The genuine id, sent the same way, does match (so the check is reached)."""
    settings, engine, key = load(project)
    genuine = sent_ids(project)[MARGARET]
    with engine.connect() as conn:
        real = parse.parse(forged_reply(f"<{MARGARET}>", genuine, "Hi"), source="t")
        assert pipeline.classify(conn, real, Runtime(settings, key=key)).recipient_id == 1
    for number, guessed in enumerate(guessed_new_form_ids(project)):
        assert guessed != genuine
        raw = forged_reply(f"<{MARGARET}>", guessed, message_id=f"<guess-{number}@evil>")
        with engine.connect() as conn:
            result = pipeline.classify(
                conn, parse.parse(raw, source="t"), Runtime(settings, key=key)
            )
        assert (result.kind, result.recipient_id, result.identity.send_id) == (
            ReplyKind.UNMATCHED,
            None,
            None,
        ), guessed
        result = cli(project, "inbound", "receive", stdin=raw)
        assert result.returncode == 0, result.stderr.decode()
    assert status_of(project, MARGARET) == {"active"}


def test_a_guessed_signed_form_message_id_unsubscribes_nobody_through_inbound_parse(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", KEY)
    monkeypatch.setenv("SYNDICATE_INBOUND_PARSE_SECRET", PARSE_SECRET)
    with serve(lambda: settings_module.load(project / "settings.toml")) as http:
        for number, guessed in enumerate(guessed_new_form_ids(project)):
            raw = forged_reply(f"<{MARGARET}>", guessed, message_id=f"<g-{number}@evil>")
            response = http.post(sendgrid.PATH, files={"email": ("m.eml", raw)})
            assert response.status_code == 200, response.text
            assert response.json()["kind"] == "unmatched"
    assert status_of(project, MARGARET) == {"active"}


def test_our_real_message_ids_are_signed_and_identify_the_reader_who_wrote(project: Path) -> None:
    ids = sent_ids(project)
    assert re.fullmatch(
        r"<syndicate\.s1\.r1\.[0-9a-f]{12}\.[a-z2-7]{16}@notes\.example\.com>", ids[MARGARET]
    )
    genuine = forged_reply(f"<{MARGARET}>", ids[MARGARET], "Lovely piece.", "<g-1@example.com>")
    settings, engine, key = load(project)
    with engine.connect() as conn:
        result = pipeline.classify(
            conn, parse.parse(genuine, source="t"), Runtime(settings, key=key)
        )
    assert (result.kind, result.recipient_id, result.identity.via) == (
        ReplyKind.COMMENT,
        1,
        "message-id",
    )
    # The same real Message-ID from someone else's address speaks for nobody.
    stranger = forged_reply("<mallory@evil.example>", ids[MARGARET])
    with engine.connect() as conn:
        result = pipeline.classify(
            conn, parse.parse(stranger, source="t"), Runtime(settings, key=key)
        )
    assert (result.kind, result.recipient_id) == (ReplyKind.UNMATCHED, None)
    # Altered by one character, it names nobody at all.
    mac = re.search(r"\.([a-z2-7]{16})@", ids[MARGARET]).group(1)
    altered = ids[MARGARET].replace(mac, ("b" if mac[0] != "b" else "c") + mac[1:])
    with engine.connect() as conn:
        result = pipeline.classify(
            conn,
            parse.parse(forged_reply(f"<{MARGARET}>", altered), source="t"),
            Runtime(settings, key=key),
        )
    assert (result.kind, result.identity.send_id) == (ReplyKind.UNMATCHED, None)


def test_message_ids_are_unique_per_installation_and_stable_for_a_retry(
    project: Path, tmp_path: Path
) -> None:
    """Issue 17: a database made again must not repeat a Message-ID (Gmail drops repeats),
    and a Message-ID of another installation identifies nothing here."""
    again = _make_sent_project(tmp_path / "again")  # the same project, a new database
    first, second = sent_ids(project), sent_ids(again)
    assert first.keys() == second.keys()
    assert not set(first.values()) & set(second.values())
    settings, engine, key = load(project)
    other = forged_reply(f"<{MARGARET}>", second[MARGARET], "Hello", "<o-1@example.com>")
    with engine.connect() as conn:
        result = pipeline.classify(conn, parse.parse(other, source="t"), Runtime(settings, key=key))
    assert result.kind is ReplyKind.UNMATCHED
    # A retry of the same delivery is composed with the same Message-ID.
    installation = db.meta.installation_id(engine)
    sender = replace(dispatch.make_sender(settings, key), installation=installation)
    assert compose.message_id(sender, 1, 1) == first[MARGARET]
    assert compose.message_id(sender, 1, 1) == compose.message_id(sender, 1, 1)


def test_a_reply_token_from_another_address_is_about_the_post_but_not_theirs(
    project: Path,
) -> None:
    """A forwarded newsletter carries the reader's reply token: whoever answers with it is
    heard (filed for the post) but cannot unsubscribe or speak as the reader."""
    settings, engine, key = load(project)
    to = tokens.reply_address(settings.mail.reply_address, tokens.make(key, "reply", 1, 1))
    raw = forged_reply("<friend@elsewhere.example>", "<x@y>", "unsubscribe", to=to)
    outcome = pipeline.process(Runtime(settings, engine=engine, key=key), raw, source="test")
    assert outcome.kind is ReplyKind.COMMENT
    with engine.connect() as conn:
        row = db.replies.get_reply(conn, outcome.reply_id)
    assert (row.recipient_id, row.post_id) == (None, 5)
    assert "not as theirs" in row.reason
    assert status_of(project, MARGARET) == {"active"}
