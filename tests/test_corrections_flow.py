"""Corrections end to end: a feed served over HTTP whose post the test edits between polls, a
real SMTP server, the author's authenticated reply, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime
from pathlib import Path

import pytest

from syndicate import db, machine
from syndicate.corrections import control, listing, rows
from syndicate.inbound.steps.approve import handle_approval_reply
from syndicate.models import Channel, RecipientKind, SendState
from syndicate.runtime import Runtime
from syndicate.scheduling import jobs, send_control
from tests.support.cli import run_cli
from tests.support.project import set_setting
from tests.support.scheduling import configure, utc
from tests.support.web import QuietHandler, serving_http

parse = BytesParser(policy=policy.default).parsebytes

BODY = (
    "<p>My neighbour Harold retired in March.</p>"
    "<p>He builds walls now, one stone at a time.</p>"
    "<p>Every morning he stops at Smith's Bakery on Mill Lane.</p>"
    '<figure><img src="https://blog.example.com/wall.jpg" alt="">'
    "<figcaption>Harold's wall in June. Photo: Jane Marlowe</figcaption></figure>"
    "<p>The job is not the work.</p>"
)
SAM = "opinion@dailyherald.example.com"
FIONA = "comment.desk@eveningpost.example.org"
# Relative to the real clock: `syndicate corrections send` decides UPDATED or CORRECTION by it.
NOW = datetime.now(UTC).replace(microsecond=0)
T0 = NOW - timedelta(days=4)  # the first run
T1 = T0 + timedelta(hours=1)  # the column goes out; its embargo is two days later
BEFORE_RELEASE = T1 + timedelta(days=1)
AFTER_RELEASE = NOW


class Feed:
    """The blog: an RSS feed on a local HTTP server (the `feed` fixture serves it); posts can be
    edited and removed."""

    def __init__(self) -> None:
        self.posts: dict[int, tuple[str, str]] = {}
        self.pages: dict[str, int] = {}  # a post page's path → its HTTP status (default 200)
        self.base = ""
        self.url = ""

    def handler(self) -> type[QuietHandler]:
        feed = self

        class Handler(QuietHandler):
            def do_HEAD(self) -> None:
                self.send_response(feed.pages.get(self.path, 200))
                self.end_headers()

            def do_GET(self) -> None:
                body = feed.xml().encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    @staticmethod
    def page(n: int) -> str:
        return f"/{n}/walls-words/"

    def xml(self) -> str:
        items = "".join(
            f"<item><title>{title}</title><link>{self.base}{self.page(n)}</link>"
            f'<guid isPermaLink="false">post-{n}</guid>'
            f"<pubDate>{format_datetime(utc(2026, 11, 20 + n, 8))}</pubDate>"
            f"<content:encoded><![CDATA[{body}]]></content:encoded></item>"
            for n, (title, body) in sorted(self.posts.items())
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>Blog</title>'
            f"<link>https://blog.example.com/</link>{items}</channel></rss>"
        )


@pytest.fixture
def feed() -> Iterator[Feed]:
    served = Feed()
    with serving_http(served.handler()) as base:
        served.base = base
        served.url = f"{base}/feed.xml"
        yield served


def column_sent(project: Path, smtp_port: int, feed: Feed, **keys: object):
    """Post 1 seen at T0 (first run: nothing sent), then post 2's column sent at T1 over the
    SMTP server on `smtp_port`; `keys` are more settings for configure(). Returns the settings,
    the engine and the T1 run's report."""
    feed.posts[1] = ("An older post", "<p>Older words.</p>")
    configure(
        project,
        feed__source=feed.url,
        feed__first_run="none",
        column__embargo="+2d",
        transport__kind="smtp",
        **{"transport.smtp__host": "127.0.0.1", "transport.smtp__security": "none"},
        **keys,
    )
    set_setting(project / "settings.toml", "port = 587", f"port = {smtp_port}")
    cfg = configure(project)
    engine = db.connect(cfg.database_url)
    jobs.run_once(Runtime(cfg, engine=engine), at=T0)
    feed.posts[2] = ("Walls and words", BODY)
    return cfg, engine, jobs.run_once(Runtime(cfg, engine=engine), at=T1)


@pytest.fixture
def delivered(project: Path, smtp_server, feed: Feed):
    """Post 2's column went to both editors at T1 over SMTP; readers' edition awaits approval."""
    controller, handler = smtp_server
    cfg, engine, report = column_sent(
        project,
        controller.port,
        feed,
        newsletter__policy="manual",
        inbound__trusted_authserv_id="mx.notes.example.com",
    )
    assert [s.sent for s in report.summaries] == [2]
    originals = {m["To"].addresses[0].addr_spec: m for m in messages(handler, "Column: ")}
    assert set(originals) == {SAM, FIONA}
    handler.messages.clear()
    return cfg, engine, handler, feed, originals


def messages(handler, subject: str = "", to: str = "") -> list[EmailMessage]:
    found = [parse(m.data) for m in handler.messages]
    return [
        m
        for m in found
        if subject in str(m["Subject"]) and (not to or m["To"].addresses[0].addr_spec == to)
    ]


def poll(cfg, engine, at) -> list[rows.Correction]:
    jobs.poll_feed(Runtime(cfg, engine=engine), at)
    return listing.listed(engine)


def test_a_real_edit_makes_one_correction_and_a_markup_edit_none(delivered, project) -> None:
    cfg, engine, _, feed, _ = delivered
    feed.posts[2] = ("Walls and words", BODY.replace("<p>My", "<p><em>My</em>").replace("'", "’"))
    assert poll(cfg, engine, BEFORE_RELEASE) == []
    feed.posts[2] = ("Walls and words", BODY.replace("Smith's", "Smyth's"))
    [correction] = poll(cfg, engine, BEFORE_RELEASE)
    assert correction.state is rows.CorrectionState.PENDING
    assert correction.summary == "changes the 3rd paragraph"
    assert poll(cfg, engine, BEFORE_RELEASE + timedelta(minutes=15)) == [correction]
    line = (
        f"Correction {correction.id} of “Walls and words” waits for you: changes the 3rd paragraph"
    )
    for command in (("status",), ("sends", "list")):
        shown = run_cli(project, *command)
        assert line in shown.stdout, shown.stdout + shown.stderr
    status = json.loads(run_cli(project, "status", "--json").stdout)
    assert status["pending_corrections"] == [line]


def test_auto_sends_at_the_next_tick_without_asking(delivered, project) -> None:
    cfg, engine, handler, feed, _ = delivered
    cfg = configure(project, column__corrections="auto")
    feed.posts[2] = ("Walls and words", BODY.replace("in March", "in May"))
    [correction] = poll(cfg, engine, BEFORE_RELEASE)
    assert correction.state is rows.CorrectionState.APPROVED
    jobs.tick(Runtime(cfg, engine=engine), at=BEFORE_RELEASE)
    assert messages(handler, "Send a correction") == []
    assert len(messages(handler, "UPDATED: Column: Walls and words")) == 2


def author_reply(question: EmailMessage, body: str, sender: str = "jane@example.com"):
    msg = EmailMessage()
    domain = sender.rsplit("@", 1)[1]
    msg["Authentication-Results"] = (
        f"mx.notes.example.com; dkim=pass header.d={domain}; dmarc=pass header.from={domain}"
    )
    msg["From"] = f"Jane <{sender}>"
    msg["To"] = str(question["Reply-To"])
    msg["Subject"] = "Re: " + str(question["Subject"])
    msg["In-Reply-To"] = str(question["Message-ID"])
    msg.set_content(body + "\n\n> Send a correction?\n")
    return parse(msg.as_bytes())


def test_send_by_reply_reaches_exactly_the_editors_who_had_it_threaded(delivered, project) -> None:
    cfg, engine, handler, feed, originals = delivered
    with (project / "subscribers/editors.csv").open("a") as csv:
        csv.write("late@paper.example,Late Editor,The Late Paper,UTC,,txt,curly,no\n")
    feed.posts[2] = ("Walls and words", BODY.replace("Smith's", "Smyth's"))
    [_correction] = poll(cfg, engine, BEFORE_RELEASE)
    jobs.tick(Runtime(cfg, engine=engine), at=BEFORE_RELEASE)
    [question] = messages(handler, "Send a correction", to="jane@example.com")
    assert str(question["Subject"]) == "Send a correction of “Walls and words” to 2 editors?"
    [attached] = [p.get_content() for p in question.iter_attachments()]
    assert str(attached["Subject"]) == "UPDATED: Column: Walls and words"
    assert "changes the 3rd paragraph" in question.get_body(("plain",)).get_content()
    assert messages(handler, "UPDATED") == []  # nothing before the author says so

    forged = author_reply(question, "send", sender="intruder@example.org")
    assert not handle_approval_reply(Runtime(cfg, engine=engine), forged).accepted
    # Through the inbound pipeline, as the author's MTA would deliver it.
    from syndicate.inbound import pipeline

    key = db.meta.hmac_key(engine, cfg.hmac_key_from_env())
    answer = author_reply(question, "send").as_bytes()
    pipeline.process(Runtime(cfg, engine=engine, key=key), answer, source="test", at=BEFORE_RELEASE)
    with engine.connect() as conn:
        [recorded] = db.replies.list_replies(conn)
    assert recorded.kind == "approval" and recorded.recipient_id is None
    assert "approved by reply" in recorded.detail
    jobs.tick(Runtime(cfg, engine=engine), at=BEFORE_RELEASE + timedelta(minutes=1))

    advisories = messages(handler, "UPDATED: Column: Walls and words")
    assert sorted(m["To"].addresses[0].addr_spec for m in advisories) == [FIONA, SAM]
    for advisory in advisories:
        original = originals[advisory["To"].addresses[0].addr_spec]
        assert advisory["In-Reply-To"] == original["Message-ID"]
        assert original["Message-ID"] in advisory["References"]
        assert advisory["Message-ID"] != original["Message-ID"]
        text = advisory.get_body(("plain",)).get_content()
        assert "WALLS-WORDS/UPDATED v2" in text and "Smyth" in text
        assert "Release time unchanged." in text
    assert listing.listed(engine)[0].state is rows.CorrectionState.SENT
    # Polling again changes nothing: editors now have this version.
    assert len(poll(cfg, engine, BEFORE_RELEASE + timedelta(minutes=20))) == 1


def test_send_by_cli_after_release_is_a_correction_with_the_note(delivered, project) -> None:
    cfg, engine, handler, feed, originals = delivered
    with engine.begin() as conn:
        sam = db.recipients.find_recipient(conn, RecipientKind.EDITOR, SAM)
        db.recipients.mark_recipient(conn, sam.id, "unsubscribed", "test")
    feed.posts[2] = ("Walls and bread", BODY)
    [correction] = poll(cfg, engine, AFTER_RELEASE)
    listing = run_cli(project, "corrections", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    [row] = json.loads(listing.stdout)
    assert (row["id"], row["state"], row["changes"]) == (
        correction.id,
        "pending",
        "changes the headline",
    )
    shown = run_cli(project, "corrections", "show", str(correction.id))
    assert "headline (changed): removed “words”; added “bread”" in shown.stdout
    sent = run_cli(
        project, "corrections", "send", str(correction.id), "--note", "The title was wrong."
    )
    assert sent.returncode == 0, sent.stderr
    [advisory] = messages(handler, "CORRECTION: ")
    assert advisory["To"].addresses[0].addr_spec == FIONA  # Sam left the list
    assert advisory["In-Reply-To"] == originals[FIONA]["Message-ID"]
    text = advisory.get_body(("plain",)).get_content()
    assert "corrects the column released" in text and "The title was wrong." in text
    again = run_cli(project, "corrections", "send", str(correction.id))
    assert again.returncode == 1 and "already sent" in again.stderr


def test_drop_leaves_editors_alone(delivered, project) -> None:
    cfg, engine, handler, feed, _ = delivered
    feed.posts[2] = ("Walls and bread", BODY)
    [correction] = poll(cfg, engine, AFTER_RELEASE)
    dropped = run_cli(project, "corrections", "drop", str(correction.id))
    assert dropped.returncode == 0, dropped.stderr
    jobs.tick(Runtime(cfg, engine=engine), at=AFTER_RELEASE)
    assert messages(handler, "Column: ") == []
    assert listing.listed(engine)[0].state is rows.CorrectionState.DROPPED


def test_kill_reaches_every_editor_and_cancels_the_pending_send(delivered, project) -> None:
    _cfg, engine, handler, _, originals = delivered
    killed = run_cli(project, "kill", "post-2", "--reason", "A legal complaint")
    assert killed.returncode == 0, killed.stderr
    kills = messages(handler, "KILL: Column: Walls and words")
    assert sorted(m["To"].addresses[0].addr_spec for m in kills) == [FIONA, SAM]
    for kill in kills:
        assert kill["Importance"] == "high"
        assert kill["In-Reply-To"] == originals[kill["To"].addresses[0].addr_spec]["Message-ID"]
        text = kill.get_body(("plain",)).get_content()
        assert "Eds: withdrawn by the author; do not publish. Reason: A legal complaint." in text
    with engine.connect() as conn:
        post = db.posts.find_post(conn, "post-2")
        newsletter = db.sends.find_send(conn, post.id, Channel.NEWSLETTER)
    assert newsletter.state == SendState.CANCELLED.value
    assert "cancelled" in killed.stdout


def test_a_post_gone_from_the_feed_is_a_proposed_kill_never_sent_alone(delivered) -> None:
    cfg, engine, handler, feed, _ = delivered
    del feed.posts[2]
    [proposed] = poll(cfg, engine, BEFORE_RELEASE)
    assert proposed.action is rows.CorrectionAction.KILL
    assert proposed.state is rows.CorrectionState.PENDING
    jobs.tick(Runtime(cfg, engine=engine), at=BEFORE_RELEASE)
    [_question] = messages(handler, "Send a KILL", to="jane@example.com")
    assert messages(handler, "KILL: ") == []
    assert len(poll(cfg, engine, BEFORE_RELEASE + timedelta(hours=1))) == 1


def test_readers_get_a_short_note_only_with_notice(delivered, project) -> None:
    cfg, engine, handler, feed, _ = delivered
    with engine.connect() as conn:
        post = db.posts.find_post(conn, "post-2")
        newsletter = db.sends.find_send(conn, post.id, Channel.NEWSLETTER)
    send_control.approve(engine, newsletter.id, by="test")
    jobs.tick(Runtime(cfg, engine=engine), at=AFTER_RELEASE)
    editions = {m["To"].addresses[0].addr_spec: m for m in messages(handler, "Walls and words")}
    assert len(editions) == 4
    handler.messages.clear()

    feed.posts[2] = ("Walls and words", BODY.replace("in March", "in May"))
    [first] = poll(cfg, engine, AFTER_RELEASE)
    control.send(Runtime(cfg, engine=engine), first.id, at=AFTER_RELEASE)
    assert messages(handler, "Correction: ") == []  # readers hear nothing by default

    cfg = configure(project, newsletter__corrections="notice")
    feed.posts[2] = ("Walls and words", BODY.replace("in March", "in April"))
    [second, _] = poll(cfg, engine, AFTER_RELEASE)
    outcome = control.send(Runtime(cfg, engine=engine), second.id, at=AFTER_RELEASE)
    notes = messages(handler, "Correction: Walls and words")
    assert len(notes) == outcome.readers == 4
    for note in notes:
        reader = note["To"].addresses[0].addr_spec
        assert note["In-Reply-To"] == editions[reader]["Message-ID"]
        assert note["List-Unsubscribe"]
        text = note.get_body(("plain",)).get_content()
        assert "the post changes the 1st paragraph" in text
        assert f"{feed.base}/2/walls-words/" in text
        assert "one stone at a time" not in text  # a note, never the post again
    advisories = messages(handler, "CORRECTION: Column: Walls and words")
    assert len(advisories) == 2 * 2  # both editors, both corrections
    assert all("CORRECTION v3" in m.get_body(("plain",)).get_content() for m in advisories[2:])


@pytest.mark.parametrize(("status", "proposed"), [(200, False), (404, True), (410, True)])
def test_a_post_scrolled_off_the_feed_is_killed_only_if_its_page_is_gone(
    delivered, status: int, proposed: bool
) -> None:
    cfg, engine, _, feed, _ = delivered
    del feed.posts[1], feed.posts[2]
    feed.posts[3] = ("A newer post", "<p>Newer words.</p>")  # post 2 is older than the feed now
    feed.pages[feed.page(2)] = status
    found = poll(cfg, engine, BEFORE_RELEASE)
    assert [(c.action.value, c.origin) for c in found] == (
        [("kill", f"its page answers HTTP {status}")] if proposed else []
    )


def test_a_further_edit_revises_the_open_correction(delivered) -> None:
    cfg, engine, _, feed, _ = delivered
    feed.posts[2] = ("Walls and words", BODY.replace("Smith's", "Smyth's"))
    [first] = poll(cfg, engine, BEFORE_RELEASE)
    feed.posts[2] = ("Walls and bread", BODY.replace("Smith's", "Smyth's"))
    [revised] = poll(cfg, engine, BEFORE_RELEASE + timedelta(minutes=15))
    assert revised.id == first.id
    assert revised.summary == "changes the headline and the 3rd paragraph"
    assert revised.details == (
        "headline (changed): removed “words”; added “bread”",
        "3rd paragraph (changed): removed “Smith's”; added “Smyth's”",
    )
    feed.posts[2] = ("Walls and words", BODY)  # back to what editors have
    [closed] = poll(cfg, engine, BEFORE_RELEASE + timedelta(minutes=30))
    assert closed.state is rows.CorrectionState.REVERTED


def test_drop_by_reply(delivered) -> None:
    cfg, engine, handler, feed, _ = delivered
    feed.posts[2] = ("Walls and bread", BODY)
    poll(cfg, engine, BEFORE_RELEASE)
    jobs.tick(Runtime(cfg, engine=engine), at=BEFORE_RELEASE)
    [question] = messages(handler, "Send a correction", to="jane@example.com")
    assert handle_approval_reply(
        Runtime(cfg, engine=engine), author_reply(question, "drop")
    ).accepted
    jobs.tick(Runtime(cfg, engine=engine), at=BEFORE_RELEASE + timedelta(minutes=1))
    assert messages(handler, "UPDATED") == []
    assert listing.listed(engine)[0].state is rows.CorrectionState.DROPPED


def test_min_words_and_off(delivered, project) -> None:
    cfg, engine, _, feed, _ = delivered
    cfg = configure(project, column__corrections_min_words=2)
    feed.posts[2] = ("Walls and bread", BODY)  # one word
    assert poll(cfg, engine, BEFORE_RELEASE) == []
    assert poll(cfg, engine, BEFORE_RELEASE + timedelta(minutes=5)) == []
    # A second small edit adds up with the first: editors still have the original.
    feed.posts[2] = ("Walls and bread", BODY.replace("in March", "in May"))
    [both] = poll(cfg, engine, BEFORE_RELEASE + timedelta(minutes=10))
    assert both.summary == "changes the headline and the 1st paragraph"
    with engine.begin() as conn:
        conn.execute(db.schema.corrections.delete())
    cfg = configure(project, column__corrections_min_words=1, column__corrections="off")
    feed.posts[2] = ("Bread and butter", BODY)
    del feed.posts[1]
    assert poll(cfg, engine, BEFORE_RELEASE) == []


def test_auto_never_sends_a_kill_alone(delivered, project) -> None:
    cfg, engine, handler, feed, _ = delivered
    cfg = configure(project, column__corrections="auto")
    del feed.posts[2]
    [proposed] = poll(cfg, engine, BEFORE_RELEASE)
    jobs.tick(Runtime(cfg, engine=engine), at=BEFORE_RELEASE)
    assert proposed.state is rows.CorrectionState.PENDING
    assert messages(handler, "KILL: ") == []
    assert len(messages(handler, "Send a KILL", to="jane@example.com")) == 1


def test_an_editors_answer_to_an_advisory_is_filed_under_the_column(delivered) -> None:
    from syndicate.inbound import pipeline

    cfg, engine, handler, feed, _ = delivered
    feed.posts[2] = ("Walls and bread", BODY)
    [correction] = poll(cfg, engine, AFTER_RELEASE)
    control.send(Runtime(cfg, engine=engine), correction.id, at=AFTER_RELEASE)
    [advisory] = messages(handler, "CORRECTION: ", to=SAM)
    answer = EmailMessage()
    answer["From"] = f"Sam Okafor <{SAM}>"
    answer["To"] = str(advisory["Reply-To"])
    answer["Subject"] = "Re: " + str(advisory["Subject"])
    answer["Message-ID"] = "<answer-1@dailyherald.example.com>"
    answer["In-Reply-To"] = str(advisory["Message-ID"])
    answer["References"] = str(advisory["References"]) + " " + str(advisory["Message-ID"])
    answer.set_content("Thanks, we will run the corrected headline.\n")
    key = db.meta.hmac_key(engine, cfg.hmac_key_from_env())
    pipeline.process(
        Runtime(cfg, engine=engine, key=key), answer.as_bytes(), source="test", at=AFTER_RELEASE
    )
    with engine.connect() as conn:
        [reply] = db.replies.list_replies(conn)
    assert (reply.kind, reply.send_id) == ("editor_response", correction.send_id)
    assert reply.post_id == correction.post_id


def test_a_send_left_half_done_by_a_dead_process_goes_out_later(delivered) -> None:
    cfg, engine, handler, feed, _ = delivered
    feed.posts[2] = ("Walls and bread", BODY)
    [correction] = poll(cfg, engine, BEFORE_RELEASE)
    with engine.begin() as conn:  # what a process killed while sending leaves behind
        db.corrections.set_state(
            conn, correction.id, rows.CorrectionState.SENDING, updated_at=BEFORE_RELEASE
        )
    jobs.tick(Runtime(cfg, engine=engine), at=BEFORE_RELEASE + timedelta(minutes=30))
    assert messages(handler, "UPDATED: ") == []  # it may still be sending
    jobs.tick(Runtime(cfg, engine=engine), at=BEFORE_RELEASE + timedelta(hours=2))
    assert len(messages(handler, "UPDATED: ")) == 2


def test_a_send_whose_process_of_this_machine_died_goes_out_at_the_next_tick(delivered) -> None:
    cfg, engine, handler, feed, _ = delivered
    feed.posts[2] = ("Walls and bread", BODY)
    [correction] = poll(cfg, engine, BEFORE_RELEASE)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = machine.name()
    try:
        with engine.begin() as conn:  # a live process of this machine is sending it
            db.corrections.set_state(
                conn,
                correction.id,
                rows.CorrectionState.SENDING,
                updated_at=BEFORE_RELEASE,
                claimed_by=f"{host}:{alive.pid}:0a0a0a0a",
            )
        jobs.tick(Runtime(cfg, engine=engine), at=BEFORE_RELEASE + timedelta(minutes=1))
        assert messages(handler, "UPDATED: ") == []
    finally:
        alive.kill()
        alive.wait()
    with engine.begin() as conn:  # … and this one was killed while it sent
        conn.execute(
            db.schema.corrections.update()
            .where(db.schema.corrections.c.id == correction.id)
            .values(claimed_by=f"{host}:{dead.pid}:0b0b0b0b")
        )
    jobs.tick(Runtime(cfg, engine=engine), at=BEFORE_RELEASE + timedelta(minutes=2))
    assert len(messages(handler, "UPDATED: ")) == 2


def test_a_deferred_advisory_is_tried_again_at_the_next_tick(delivered) -> None:
    cfg, engine, handler, feed, originals = delivered
    handler.refuse[SAM] = "451 4.7.1 Try again later"
    feed.posts[2] = ("Walls and bread", BODY)
    [correction] = poll(cfg, engine, AFTER_RELEASE)
    outcome = control.send(Runtime(cfg, engine=engine), correction.id, at=AFTER_RELEASE)
    assert (outcome.sent, outcome.failed) == (1, 1)
    assert [m["To"].addresses[0].addr_spec for m in messages(handler, "CORRECTION: ")] == [FIONA]
    del handler.refuse[SAM]
    jobs.tick(Runtime(cfg, engine=engine), at=AFTER_RELEASE + timedelta(minutes=1))
    [retried] = messages(handler, "CORRECTION: ", to=SAM)
    assert "WALLS-WORDS/CORRECTION v2" in retried.get_body(("plain",)).get_content()
    assert retried["In-Reply-To"] == originals[SAM]["Message-ID"]
    jobs.tick(Runtime(cfg, engine=engine), at=AFTER_RELEASE + timedelta(minutes=2))
    assert len(messages(handler, "CORRECTION: ")) == 2  # nobody twice
    shown = run_cli(cfg.path("."), "corrections", "show", str(correction.id))
    assert f"{SAM}: sent" in shown.stdout and f"{FIONA}: sent" in shown.stdout


def test_a_proposed_kill_closes_when_the_post_returns_or_goes_out_with_your_reason(
    delivered, project
) -> None:
    cfg, engine, handler, feed, _ = delivered
    post = feed.posts.pop(2)
    [proposed] = poll(cfg, engine, BEFORE_RELEASE)
    feed.posts[2] = post  # it was a mistake: the post is back
    [closed] = poll(cfg, engine, BEFORE_RELEASE + timedelta(minutes=15))
    assert (closed.id, closed.state) == (proposed.id, rows.CorrectionState.REVERTED)

    del feed.posts[2]
    again = poll(cfg, engine, BEFORE_RELEASE + timedelta(minutes=30))[0]
    assert again.id != proposed.id and again.reason == "the post was taken off the blog"
    sent = run_cli(project, "corrections", "send", str(again.id), "--note", "Legal advice")
    assert sent.returncode == 0, sent.stderr
    kills = messages(handler, "KILL: ")
    assert len(kills) == 2
    assert "Reason: Legal advice." in kills[0].get_body(("plain",)).get_content()
