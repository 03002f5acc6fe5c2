"""The inbound pipeline on real messages: clients' quoting, DSNs, auto-replies, unsubscribes,
bad tokens, broken MIME, 8-bit headers, a 30 MB message; through `syndicate inbound receive`,
`inbound classify`, `inbound poll` (Maildir) and `replies list/export`."""

from __future__ import annotations

import json
import mailbox
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import func, select

from syndicate import db
from syndicate.inbound import pipeline
from syndicate.inbound.steps import parse
from syndicate.models import ReplyKind
from syndicate.runtime import Runtime
from tests.support.inbound import (
    cli,
    cli_process,
    fixture,
    load,
    replies,
    sent_fixtures,
    set_url_file,
    signed_ids,
)

QUOTED = ("hidden inside it", "wrote", "schrieb", "a écrit", "Jane Marlowe <", "> ")


base, project = sent_fixtures("inbound-base")


def classify(base: Path, name: str):
    return classify_bytes(base, fixture(name))


def classify_bytes(base: Path, raw: bytes):
    settings, engine, key = load(base)
    with engine.connect() as conn:
        return pipeline.classify(conn, parse.parse(raw, source="test"), Runtime(settings, key=key))


CLIENT_REPLIES = {
    "gmail_en.eml": (1, "I spent twenty years confusing my job title with my work"),
    "gmail_fr.eml": (2, "mon travail, c'est d'apprendre\nà mes élèves à douter."),
    "gmail_de.eml": (3, "die Arbeit ist, was man daraus macht."),
    "outlook_en.eml": (1, "protected the work from the job."),
    "outlook_de.eml": (3, "meine Großmutter hätte das genauso gesagt."),
    "outlook_fr_html.eml": (2, "J’ai partagé votre texte avec toute mon équipe."),
    "apple_en.eml": (3, "Made me miss my stop, in a good way."),
    "apple_fr.eml": (2, "le métier et le travail se confondent enfin."),
    "thunderbird_en.eml": (4, "for some of us the job is the work"),
    "thunderbird_de.eml": (3, "Danke für die Worte über die Arbeit hinter dem Beruf."),
    "thunderbird_fr.eml": (2, "votre chronique sur les bibliothèques"),
}
SIGNATURES = (
    "Head of Operations",
    "Sent from my iPhone",
    "A. Reader",
    "Professeure",
    "Viele Grüße",
)


@pytest.mark.parametrize("name", sorted(CLIENT_REPLIES))
def test_a_readers_reply_in_each_client_and_language_is_a_comment_with_only_their_words(
    base: Path, name: str
) -> None:
    recipient, words = CLIENT_REPLIES[name]
    result = classify(base, name)
    assert result.kind is ReplyKind.COMMENT, result.reason
    assert (result.post_id, result.recipient_id) == (5, recipient)
    assert words in result.text
    for quoted in QUOTED + SIGNATURES:
        assert quoted not in result.text, f"{quoted!r} left in {result.text!r}"


def test_an_editors_reply_is_an_answer_about_the_column(base: Path) -> None:
    result = classify(base, "editor_reply.eml")
    assert result.kind is ReplyKind.EDITOR_RESPONSE
    assert (result.post_id, result.recipient_id) == (5, 5)
    assert (
        result.text == "Jane, we'll run it Saturday on the op-ed page, trimmed to 780 words.\n\nSam"
    )


def test_without_a_token_our_message_id_in_in_reply_to_identifies_the_reader(base: Path) -> None:
    result = classify_bytes(base, signed_ids(base, fixture("reply_by_references.eml")))
    assert (result.kind, result.recipient_id, result.identity.via) == (
        ReplyKind.COMMENT,
        3,
        "message-id",
    )


def test_our_message_id_from_someone_elses_address_speaks_for_nobody(base: Path) -> None:
    """Message-IDs are guessable: a stranger quoting one cannot comment or unsubscribe as the
    reader it names."""
    raw = signed_ids(base, fixture("reply_by_references.eml"))
    sender = message_from_bytes(raw, policy=policy.default)["From"].addresses[0].addr_spec
    forged = raw.replace(sender.encode(), b"mallory@evil.example", 1)
    forged = forged.replace(b"\n\n", b"\n\nunsubscribe\n\n", 1)
    result = classify_bytes(base, forged)
    assert result.kind is ReplyKind.UNMATCHED and result.recipient_id is None
    assert "mallory@evil.example" in result.reason


@pytest.mark.parametrize(
    ("name", "addresses", "temporary"),
    [
        ("dsn_postfix.eml", ["zoe.perez@example.org"], False),
        ("dsn_exim.eml", ["d.nakamura@example.net"], False),
        ("dsn_exchange.eml", ["opinion@dailyherald.example.com"], False),
        ("dsn_gmail_delay.eml", ["margaret.holloway@example.com"], True),
    ],
)
def test_bounces_from_each_mta_name_the_failed_address(
    base: Path, name: str, addresses: list[str], temporary: bool
) -> None:
    result = classify(base, name)
    assert result.kind is ReplyKind.BOUNCE
    assert list(result.addresses) == addresses
    assert result.temporary is temporary


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("auto_rfc3834.eml", "Auto-Submitted: auto-replied"),
        ("auto_exchange_de.eml", "Automatische Antwort"),
        ("auto_fr_subject.eml", "Réponse automatique"),
        ("auto_x_autoreply.eml", "X-Autoreply"),
        ("auto_null_sender.eml", "null sender"),
    ],
)
def test_automatic_replies_are_recognised(base: Path, name: str, why: str) -> None:
    result = classify(base, name)
    assert result.kind is ReplyKind.AUTO_REPLY
    assert why in result.reason


@pytest.mark.parametrize(
    ("name", "recipient"),
    [("unsubscribe_en.eml", 1), ("unsubscribe_de.eml", 3), ("unsubscribe_mailto.eml", 2)],
)
def test_unsubscribe_requests(base: Path, name: str, recipient: int) -> None:
    result = classify(base, name)
    assert (result.kind, result.recipient_id) == (ReplyKind.UNSUBSCRIBE, recipient)


def test_a_reply_that_merely_mentions_unsubscribing_is_a_comment(base: Path) -> None:
    assert classify(base, "not_unsubscribe.eml").kind is ReplyKind.COMMENT


@pytest.mark.parametrize(
    ("name", "reason", "words"),
    [
        ("forged_token.eml", "did not verify", "Pretending to be Margaret. Please unsubscribe."),
        ("altered_token.eml", "did not verify", "unsubscribe"),
        ("stranger.eml", "no reply token", "How do I subscribe?"),
    ],
)
def test_forged_altered_and_missing_tokens_are_unmatched_and_keep_the_text(
    base: Path, name: str, reason: str, words: str
) -> None:
    result = classify(base, name)
    assert result.kind is ReplyKind.UNMATCHED
    assert (result.post_id, result.recipient_id) == (None, None)
    assert reason in result.reason
    assert words in result.text


def test_an_approve_token_is_recorded_as_an_approval(base: Path) -> None:
    result = classify(base, "approval.eml")
    assert result.kind is ReplyKind.APPROVAL
    assert (result.identity.purpose, result.identity.send_id) == ("approve", 1)


def test_broken_mime_and_8bit_headers_still_yield_what_they_can(base: Path) -> None:
    broken = classify(base, "broken_mime.eml")
    assert broken.kind is ReplyKind.COMMENT
    assert broken.text == "The part that survived: great column!"
    inbound = parse.parse(fixture("eightbit_headers.eml"), source="test")
    assert inbound.sender == "juergen@example.de"
    assert "Grüße aus München" in inbound.subject
    result = classify(base, "eightbit_headers.eml")
    assert (result.kind, result.text) == (ReplyKind.COMMENT, "Schöne Kolumne — danke!")


# --- through the command line -----------------------------------------------------------------


def test_receive_files_a_comment_forwards_it_and_never_files_it_twice(project: Path) -> None:
    first = cli_process(project, "inbound", "receive", stdin=fixture("gmail_en.eml"))
    assert first.returncode == 0, first.stderr.decode()
    again = cli(project, "inbound", "receive", stdin=fixture("gmail_en.eml"))
    assert again.returncode == 0
    assert b"already recorded" in again.stderr
    [reply] = replies(project)
    assert (reply["kind"], reply["state"], reply["post"], reply["recipient"]) == (
        "comment",
        "forwarded",
        5,
        1,
    )
    [forwarded] = (project / "outbox").glob("reply*jane@example.com.eml")
    message = message_from_bytes(forwarded.read_bytes(), policy=policy.default)
    assert message["To"].addresses[0].addr_spec == "jane@example.com"
    assert message["Reply-To"].addresses[0].addr_spec == "margaret.holloway@example.com"
    assert (
        message["Subject"]
        == "Margaret Holloway replied to 'The job is not the work — and that’s the point'"
    )
    assert message["Message-ID"] == "<CAF3x9q7pY2=gmail-en-0001@mail.gmail.com>"
    body = message.get_content()
    assert "I spent twenty years confusing my job title" in body
    assert "https://blog.example.com/2026/11/26/the-job-is-not-the-work/" in body
    assert "hidden inside it" not in body


def test_every_fixture_ends_in_exactly_one_recorded_state(project: Path) -> None:
    names = sorted(p.name for p in (Path(__file__).parent / "fixtures" / "inbound").glob("*.eml"))
    settings, engine, key = load(project)
    for name in names:  # in-process: the command's own path is tested above
        raw = signed_ids(project, fixture(name))  # as if replying to what this project sent
        outcome = pipeline.process(Runtime(settings, engine=engine, key=key), raw, source="test")
        assert not outcome.duplicate, name
    rows = replies(project)
    assert len(rows) == len(names)
    kinds = {}
    for row in rows:
        kinds[row["kind"]] = kinds.get(row["kind"], 0) + 1
        assert row["state"] in ("forwarded", "filed", "handled"), row
    assert kinds == {
        "comment": 15,
        "editor_response": 1,
        "bounce": 4,
        "auto_reply": 5,
        "unsubscribe": 3,
        "unmatched": 3,
        "approval": 1,
    }
    with engine.connect() as conn:
        statuses = {r.id: r.status for r in conn.execute(select(db.schema.recipients))}
    # Unsubscribed by their replies (1, 3 by words, 2 by the mailto token); one hard bounce each
    # for 5 stays below the threshold of 3.
    assert statuses == {
        1: "unsubscribed",
        2: "unsubscribed",
        3: "unsubscribed",
        4: "active",
        5: "active",
        6: "active",
    }
    confirmations = sorted(p.name for p in (project / "outbox").glob("reply*.eml"))
    assert any("margaret.holloway" in n for n in confirmations)
    listed = cli(project, "replies", "list", "--kind", "unmatched", "--json")
    assert {r["sender"] for r in json.loads(listed.stdout)} == {
        "mallory@attacker.example",
        "priya@example.com",
    }


def test_classify_prints_json_and_changes_nothing(project: Path) -> None:
    result = cli(project, "inbound", "classify", "--json", stdin=fixture("dsn_postfix.eml"))
    assert result.returncode == 0, result.stderr.decode()
    data = json.loads(result.stdout)
    assert data["kind"] == "bounce"
    assert data["addresses"] == ["zoe.perez@example.org"]
    assert data["temporary"] is False
    stranger = json.loads(
        cli(project, "inbound", "classify", "--json", stdin=fixture("stranger.eml")).stdout
    )
    assert (stranger["kind"], stranger["post"], stranger["recipient"]) == ("unmatched", None, None)
    assert "How do I subscribe?" in stranger["text"]
    unsubscribe = cli(project, "inbound", "classify", "--json", stdin=fixture("unsubscribe_en.eml"))
    assert json.loads(unsubscribe.stdout)["kind"] == "unsubscribe"
    assert replies(project) == []
    _, engine, _ = load(project)
    with engine.connect() as conn:
        assert db.recipients.get_recipient(conn, 1) is not None
        assert (
            conn.execute(
                select(func.count())
                .select_from(db.schema.recipients)
                .where(db.schema.recipients.c.status != "active")
            ).scalar()
            == 0
        )
        assert conn.execute(select(func.count()).select_from(db.schema.bounce_scores)).scalar() == 0


def test_bounce_scores_count_once_a_day_and_suppress_at_the_threshold(project: Path) -> None:
    settings, engine, key = load(project)
    day = datetime(2026, 11, 27, 12, tzinfo=UTC)
    dsn = signed_ids(project, fixture("dsn_postfix.eml"))  # returns our signed Message-ID

    def bounce(raw: bytes, at: datetime) -> None:
        # Each bounce is a new message: give it its own Message-ID.
        raw = raw.replace(b"<20261127120005.4B2C11A0F3@", f"<{at.timestamp()}.x@".encode())
        pipeline.process(Runtime(settings, engine=engine, key=key), raw, source="test", at=at)

    def score() -> float:
        with engine.connect() as conn:
            row = db.bounces.get_bounce_score(conn, "zoe.perez@example.org")
            return row.score if row else 0.0

    def status() -> str:
        with engine.connect() as conn:
            return conn.execute(
                select(db.schema.recipients.c.status).where(db.schema.recipients.c.id == 2)
            ).scalar()

    bounce(dsn, day)
    bounce(dsn, day + timedelta(hours=2))  # same day: recorded, not counted
    assert (score(), status()) == (1.0, "active")
    bounce(dsn, day + timedelta(days=1))
    assert (score(), status()) == (2.0, "active")
    bounce(dsn, day + timedelta(days=2))
    assert (score(), status()) == (3.0, "bounced")
    with engine.connect() as conn:
        events = conn.execute(select(db.schema.bounce_events.c.counted)).scalars().all()
    assert events == [True, False, True, True]
    # A temporary failure counts half, and a score left alone for a week starts again.
    delay = signed_ids(project, fixture("dsn_gmail_delay.eml"))
    pipeline.process(Runtime(settings, engine=engine, key=key), delay, source="test", at=day)
    with engine.connect() as conn:
        assert db.bounces.get_bounce_score(conn, "margaret.holloway@example.com").score == 0.5
    later = delay.replace(b"0001.GMR@", b"0002.GMR@")
    pipeline.process(
        Runtime(settings, engine=engine, key=key), later, source="test", at=day + timedelta(days=10)
    )
    with engine.connect() as conn:
        assert db.bounces.get_bounce_score(conn, "margaret.holloway@example.com").score == 0.5


def test_a_30_mb_message_is_refused_politely_and_recorded(project: Path) -> None:
    body = (b"x" * 76 + b"\n") * (30 * 1024 * 1024 // 77)
    raw = fixture("gmail_fr.eml").replace(b"Tr\xc3\xa8s juste.", body, 1)
    assert len(raw) > 30_000_000
    result = cli_process(project, "inbound", "receive", stdin=raw)
    # Recorded, so exit 0: an MTA bounce would go to the envelope sender, whoever forged it.
    assert result.returncode == 0, result.stderr.decode()
    [reply] = replies(project)
    assert (reply["kind"], reply["state"], reply["sender"]) == (
        "refused",
        "refused",
        "zoe.perez@example.org",
    )
    assert "larger than inbound.max_message_bytes" in reply["reason"]
    _, engine, _ = load(project)
    with engine.connect() as conn:
        row = db.replies.get_reply(conn, reply["id"])
    assert row.size == len(raw)
    assert len(row.raw) < 10_000


def test_a_transient_problem_exits_75_so_the_mta_retries(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = project / "settings.toml"
    # This URL, not the database a PostgreSQL run gives the project.
    set_url_file(config, "")
    monkeypatch.delenv("SYNDICATE_DATABASE_URL", raising=False)
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace(
            'url = "sqlite:///syndicate.db"', f'url = "sqlite:///{tmp_path}/missing/dir/x.db"'
        )
    )
    result = cli_process(project, "inbound", "receive", stdin=fixture("gmail_en.eml"))
    assert result.returncode == 75
    assert b"temporary failure" in result.stderr


def test_maildir_poll_files_each_message_once_and_moves_it(project: Path) -> None:
    box = mailbox.Maildir(project / "Maildir", create=True)
    for name in ("thunderbird_en.eml", "dsn_exim.eml", "stranger.eml"):
        box.add(fixture(name))
    config = project / "settings.toml"
    config.write_text(config.read_text().replace('maildir = ""', 'maildir = "Maildir"'))
    first = cli(project, "inbound", "poll")
    assert first.returncode == 0, first.stderr.decode()
    assert "3 message(s)" in first.stdout.decode()
    assert len(box) == 0
    assert len(box.get_folder("processed")) == 3
    second = cli(project, "inbound", "poll")
    assert "nothing new" in second.stdout.decode()
    assert sorted(r["kind"] for r in replies(project)) == ["bounce", "comment", "unmatched"]


def test_replies_list_by_post_and_wxr_export(project: Path) -> None:
    for name in ("gmail_fr.eml", "apple_en.eml", "editor_reply.eml", "stranger.eml"):
        assert cli(project, "inbound", "receive", stdin=fixture(name)).returncode == 0
    by_post = json.loads(cli(project, "replies", "list", "--post", "5", "--json").stdout)
    assert sorted(r["kind"] for r in by_post) == ["comment", "comment", "editor_response"]
    table = cli(project, "replies", "list").stdout.decode()
    assert "unmatched" in table and "priya@example.com" in table
    out = project / "comments.xml"
    assert cli(project, "replies", "export", "--format", "wxr", "--out", str(out)).returncode == 0
    ns = {"wp": "http://wordpress.org/export/1.2/"}
    root = ET.parse(out).getroot()
    [item] = root.findall("./channel/item")
    assert item.findtext("link") == "https://blog.example.com/2026/11/26/the-job-is-not-the-work/"
    comments = item.findall("wp:comment", ns)
    assert sorted(c.findtext("wp:comment_author_email", namespaces=ns) for c in comments) == [
        "d.nakamura@example.net",
        "zoe.perez@example.org",
    ]
    assert all(c.findtext("wp:comment_approved", namespaces=ns) == "0" for c in comments)
    assert any(
        "apprendre\nà mes élèves" in c.findtext("wp:comment_content", namespaces=ns)
        for c in comments
    )


def test_the_envelope_recipient_given_by_the_mta_identifies_the_reader(project: Path) -> None:
    # Sent to the bare reply address (a Bcc, or a client that rewrote To): only the envelope
    # recipient that Postfix/Exim pass with --recipient carries the token.
    raw = fixture("stranger.eml").replace(b"<stranger-1@", b"<envelope-1@")
    raw = raw.replace(b"Priya Raman <priya@example.com>", b"<d.nakamura@example.net>")
    token_address = "replies+r1-3-iariehjgrsr4qd64@notes.example.com"
    result = cli(project, "inbound", "receive", "--recipient", token_address, stdin=raw)
    assert result.returncode == 0, result.stderr.decode()
    [reply] = replies(project)
    assert (reply["kind"], reply["recipient"]) == ("comment", 3)
    assert "matched by token:envelope" in reply["reason"]


def test_approval_is_recorded_and_changes_nothing_else(project: Path) -> None:
    settings, engine, key = load(project)
    outcome = pipeline.process(
        Runtime(settings, engine=engine, key=key), fixture("approval.eml"), source="test"
    )
    assert (outcome.kind, outcome.state.value) == (ReplyKind.APPROVAL, "filed")
    assert not list((project / "outbox").glob("reply*.eml"))
    with engine.connect() as conn:
        assert db.sends.get_send(conn, 1).state == "done"


def test_a_message_that_breaks_the_pipeline_is_kept_and_not_bounced(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: a reader's words that crash quote-stripping. The message is kept whole
    as refused for the author to read, and the MTA is told it was delivered (exit 0), since a
    bounce would tell the reader it was lost."""
    from syndicate.inbound.sources import stdin
    from syndicate.inbound.steps import text

    def crash(message):
        raise UnicodeError("simulated decoder failure")

    monkeypatch.setattr(text, "own_words", crash)
    settings, engine, key = load(project)
    status, outcome = stdin.receive_bytes(
        Runtime(settings, engine=engine, key=key), fixture("gmail_en.eml")
    )
    assert (status, outcome.kind, outcome.too_large) == (0, ReplyKind.REFUSED, False)
    with engine.connect() as conn:
        row = db.replies.get_reply(conn, outcome.reply_id)
    assert row.raw == fixture("gmail_en.eml")
    assert "simulated decoder failure" in row.reason


@pytest.mark.parametrize(
    ("sender", "kind", "recipient"),
    [
        ("Zoe.Perez@example.org", ReplyKind.COMMENT, None),
        ("mallory@evil.example", ReplyKind.UNMATCHED, None),
    ],
)
def test_a_send_wide_reply_address_is_matched_by_who_wrote(
    base: Path, sender: str, kind: ReplyKind, recipient: int | None
) -> None:
    """Over SendGrid's API one Reply-To serves a whole send (its token names recipient 0): a
    message From one of that send's readers is filed for the post but not as theirs (From proves
    nothing); anyone else is unmatched."""
    from email.message import EmailMessage

    from syndicate import tokens

    settings, _, key = load(base)
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = tokens.reply_address(settings.mail.reply_address, tokens.make(key, "reply", 1, 0))
    msg["Subject"] = "Re: the column"
    msg.set_content("Lovely piece, thank you.")
    result = classify_bytes(base, msg.as_bytes())
    assert (result.kind, result.recipient_id) == (kind, recipient)
