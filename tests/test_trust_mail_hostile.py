"""An attacker's review of the email trust defences (issue 11, second round), each finding as
written: a shared SendGrid Reply-To and a forged From unsubscribed any reader; a UTF-7 body, a
From of 5,000 "(" and a 840 KB Subject each made `inbound receive` fail (exit 75, or killed for
memory) on every redelivery, for ever. Every such message is now recorded once, exit 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from syndicate import db, tokens
from syndicate.db.replies import StoredReply
from syndicate.delivery import dispatch
from syndicate.delivery.compose import shared_reply_address
from syndicate.inbound import pipeline
from syndicate.inbound.steps import parse
from syndicate.runtime import Runtime
from tests.support.hostile_mail import forged_reply, status_of
from tests.support.inbound import (
    cli,
    cli_process,
    edit,
    env,
    load,
    replies,
    sent_fixtures,
)

ZOE = "zoe.perez@example.org"  # reader 2 of send 1


base, project = sent_fixtures("trust-hostile")


def shared_address(project: Path) -> str:
    """The Reply-To every SendGrid reader of send 1 gets (`reply_to = "shared"`)."""
    settings, _, key = load(project)
    return shared_reply_address(dispatch.make_sender(settings, key), 1)


def stored(project: Path, reply_id: int) -> StoredReply:
    _, engine, _ = load(project)
    with engine.connect() as conn:
        row = db.replies.get_reply(conn, reply_id)
    assert row is not None
    return row


def test_a_forged_from_to_the_shared_reply_address_unsubscribes_nobody(project: Path) -> None:
    """Finding 1 as written: From Zoe (forged), To the send-wide reply address, "unsubscribe"."""
    to = shared_address(project)
    assert "+r1-0-" in to
    raw = forged_reply(f"Zoe <{ZOE}>", "", "unsubscribe", "<sg-forge-1@evil>", to=to)
    result = cli(project, "inbound", "receive", stdin=raw)
    assert result.returncode == 0, result.stderr.decode()
    assert status_of(project, ZOE) == {"active"}
    [reply] = replies(project)
    # Filed for the post (the author reads it), never as Zoe's: From proves nothing.
    assert (reply["kind"], reply["recipient"], reply["post"]) == ("comment", None, 5)
    assert "claimed by From zoe.perez@example.org" in reply["reason"]
    assert "unverified" in reply["reason"] and "not acted on" in reply["reason"]


def test_a_comment_to_the_shared_address_is_filed_for_the_post_not_as_the_reader(
    project: Path,
) -> None:
    raw = forged_reply(f"<{ZOE}>", "", "Lovely piece.", "<sg-2@x>", to=shared_address(project))
    settings, engine, key = load(project)
    with engine.connect() as conn:
        result = pipeline.classify(conn, parse.parse(raw, source="t"), Runtime(settings, key=key))
    assert (result.kind.value, result.recipient_id, result.post_id) == ("comment", None, 5)
    assert "claimed by From" in result.reason and "not acted on" not in result.reason


def test_the_author_is_told_a_shared_address_comment_is_not_matched_to_a_reader(
    project: Path,
) -> None:
    raw = forged_reply(f"<{ZOE}>", "", "Lovely piece.", "<sg-3@x>", to=shared_address(project))
    result = cli(project, "inbound", "receive", stdin=raw)
    assert result.returncode == 0, result.stderr.decode()
    [forward] = (project / "outbox").glob("reply*.eml")
    text = " ".join(forward.read_text().split())
    assert "Not matched to anyone on your lists" in text and "Lovely piece." in text


def test_a_large_message_to_the_shared_address_tells_no_one(project: Path) -> None:
    """Too large, From a reader of the send, To the shared address: the reader named by From
    alone is not mailed a notice (they may not have written), and the MTA bounces nothing."""
    edit(project / "settings.toml", "max_message_bytes = 10000000", "max_message_bytes = 20000")
    raw = forged_reply(f"<{ZOE}>", "", "x" * 30_000, "<sg-big@evil>", to=shared_address(project))
    result = cli(project, "inbound", "receive", stdin=raw)
    assert result.returncode == 0, result.stderr.decode()
    [reply] = replies(project)
    assert (reply["kind"], reply["recipient"]) == ("refused", None)
    assert list((project / "outbox").glob("reply*.eml")) == []


UTF7 = (
    b"From: someone@else.example\nTo: replies@notes.example.com\nSubject: hi\n"
    b"Message-ID: <u7-1@x>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-7\n\n"
    b"hello +2D0- world\n"
)


def test_a_utf7_body_decoding_to_a_lone_surrogate_is_recorded_once(project: Path) -> None:
    """Finding 2 as written: the insert used to raise UnicodeEncodeError: exit 75 for ever."""
    for _ in range(2):
        result = cli(project, "inbound", "receive", stdin=UTF7)
        assert result.returncode == 0, result.stderr.decode()
    [reply] = replies(project)
    row = stored(project, reply["id"])
    assert row.raw == UTF7
    assert "hello ? world" in row.text


def test_clean_leaves_no_surrogate_in_any_stored_string() -> None:
    assert parse.clean("a\ud83d b") == "a? b"
    assert parse.clean("caf\udcc3\udca9 \udce9 \udfff") == "café é ?"
    for text in ("a\ud83d", "\udc80\ud800", "plain"):
        parse.clean(text).encode("utf-8")  # raises if a surrogate is left


def test_a_failure_while_recording_files_the_message_whole_as_refused(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any error of the message's own (not the database's) in the record step: refused, kept."""
    from syndicate.inbound.steps import file as filing

    real = filing.record
    calls: list[str] = []

    def fails_once(conn, inbound, result):
        calls.append(result.kind.value)
        if len(calls) == 1:
            raise UnicodeEncodeError("utf-8", "\ud83d", 0, 1, "surrogates not allowed")
        return real(conn, inbound, result)

    monkeypatch.setattr(filing, "record", fails_once)
    settings, engine, key = load(project)
    outcome = pipeline.process(Runtime(settings, engine=engine, key=key), UTF7, source="stdin")
    assert (outcome.kind.value, outcome.state.value) == ("refused", "refused")
    row = stored(project, outcome.reply_id)
    assert row.raw == UTF7 and "UnicodeEncodeError" in row.reason
    again = pipeline.process(Runtime(settings, engine=engine, key=key), UTF7, source="stdin")
    assert again.duplicate and again.reply_id == outcome.reply_id


def test_a_from_of_5000_open_parentheses_is_recorded_as_malformed(project: Path) -> None:
    """Finding 3 as written: RecursionError in the From fallback, outside any guard: exit 75."""
    raw = (
        b"From: " + b"(" * 5000 + b"x@evil.example\nTo: replies@notes.example.com\n"
        b"Subject: t\nMessage-ID: <c-1@x>\n\nhi\n"
    )
    for _ in range(2):
        result = cli_process(project, "inbound", "receive", stdin=raw)
        assert result.returncode == 0, result.stderr.decode()
    [reply] = replies(project)
    assert reply["kind"] == "malformed"
    row = stored(project, reply["id"])
    assert row.raw == raw and row.subject == "t" and row.message_id == "<c-1@x>"


def test_parse_never_raises_and_keeps_the_headers_it_can(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_args, **_kwargs):
        raise RecursionError("deep")

    monkeypatch.setattr(parse, "_sender", broken)
    raw = b"From: a@b.example\nSubject: kept\nMessage-ID: <k@x>\n\nbody\n"
    inbound = parse.parse(raw, source="t")
    assert (inbound.subject, inbound.message_id, inbound.raw) == ("kept", "<k@x>", raw)
    assert "RecursionError" in inbound.malformed


def test_a_header_over_16_kb_is_truncated_and_filed_as_malformed() -> None:
    words = b"=?utf-8?q?a?= " * 5000  # 70 KB: under the block's cap, over one header's
    raw = b"From: x@evil.example\nSubject: " + words + b"\nMessage-ID: <h@x>\n\nhi\n"
    inbound = parse.parse(raw, source="t")
    assert "16,384" in inbound.malformed and inbound.raw == raw
    assert inbound.message_id == "<h@x>" and inbound.sender == "x@evil.example"
    assert len(inbound.subject) < 1000
    small = parse.parse(raw.replace(words, b"=?utf-8?q?a?= " * 1000), source="t")
    assert small.malformed == "" and small.subject == "a" * 1000


PEAK_OF_CHILD = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdin=sys.stdin, stdout=subprocess.DEVNULL, check=False)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
"""


def peak_mb_of_receive(project: Path, raw: bytes) -> int:
    """Peak RSS of a real `syndicate inbound receive` process, in MB."""
    command = [sys.executable, "-m", "syndicate", "--config", str(project / "settings.toml")]
    wrapper = [sys.executable, "-c", PEAK_OF_CHILD, *command, "inbound", "receive"]
    result = subprocess.run(
        wrapper, input=raw, capture_output=True, env=env(), cwd=project, timeout=120
    )
    return int(result.stdout.split()[-1])


def test_a_280_kb_subject_is_recorded_in_bounded_memory(project: Path) -> None:
    """Finding 4 as written: 20,000 encoded words (280 KB) in one Subject peaked at 2.86 GB RSS
    (and 840 KB got the process killed before anything was recorded)."""
    raw = (
        b"From: x@evil.example\nTo: replies@notes.example.com\nSubject: "
        + b"=?utf-8?q?a?= " * 20000
        + b"\nMessage-ID: <big-header@x>\n\nhi\n"
    )
    peak_mb = peak_mb_of_receive(project, raw)
    assert peak_mb < 300, f"peak RSS {peak_mb} MB"
    [reply] = replies(project)
    assert reply["kind"] == "malformed" and "header block larger" in reply["reason"]
    row = stored(project, reply["id"])
    assert row.raw == raw and len(row.subject) < 1000


@pytest.mark.parametrize(
    ("header", "words"),
    [
        ("Content-Type: text/plain; name", 20000),
        ("Content-Disposition: attachment; filename", 60000),
    ],
    ids=["part-content-type-280kb", "part-disposition-840kb"],
)
def test_a_huge_header_inside_a_mime_part_is_recorded_in_bounded_memory(
    project: Path, header: str, words: int
) -> None:
    """The same attack one level down: the parser reads each part's Content-Type itself (70 KB
    of encoded words there peaked at 270 MB, measured), and the text step reads the others."""
    part = header.encode() + b'="' + b"=?utf-8?q?a?= " * words + b'"\n\nhello\n'
    raw = (
        b"From: x@evil.example\nTo: replies@notes.example.com\nSubject: t\n"
        b"Message-ID: <part@x>\nMIME-Version: 1.0\n"
        b"Content-Type: multipart/mixed; boundary=B\n\n--B\n" + part + b"--B--\n"
    )
    peak_mb = peak_mb_of_receive(project, raw)
    assert peak_mb < 300, f"peak RSS {peak_mb} MB"
    [reply] = replies(project)
    assert reply["kind"] == "malformed" and "MIME part" in reply["reason"]
    assert stored(project, reply["id"]).raw == raw


def test_a_reply_to_the_shared_address_quoting_the_readers_own_message_id_is_theirs(
    project: Path,
) -> None:
    """The reader's mail program quotes the Message-ID only their copy carried (signed): with
    From their address too, the reply is theirs, as over SMTP; from anyone else it is not."""
    settings, engine, key = load(project)
    installation = db.meta.installation_id(engine)
    own = tokens.message_id(key, installation, 1, 2, "notes.example.com")
    to = shared_address(project)
    genuine = forged_reply(f"<{ZOE}>", own, "unsubscribe", "<sg-own@x>", to=to)
    forged = forged_reply("<mallory@evil.example>", own, "unsubscribe", "<sg-own2@x>", to=to)
    with engine.connect() as conn:
        mine = pipeline.classify(conn, parse.parse(genuine, source="t"), Runtime(settings, key=key))
        theirs = pipeline.classify(
            conn, parse.parse(forged, source="t"), Runtime(settings, key=key)
        )
    assert (mine.kind.value, mine.recipient_id, mine.identity.via) == (
        "unsubscribe",
        2,
        "message-id",
    )
    assert (theirs.kind.value, theirs.recipient_id) == ("unmatched", None)
