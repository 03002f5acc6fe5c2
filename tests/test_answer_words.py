"""The author's answers by email count only when the first line is the answer and nothing else:
"approved? not yet" does not release a send, "sending is a bad idea" does not send a correction,
"dropbox link below" does not drop one; the author's usual ways of saying it still do."""

from __future__ import annotations

from datetime import timedelta

import pytest

from syndicate.corrections import listing, rows
from syndicate.corrections.control import DROP_WORDS, SEND_WORDS
from syndicate.inbound.answers import first_line, is_answer
from syndicate.inbound.steps.approve import APPROVE_WORDS, handle_approval_reply
from syndicate.models import SendState
from syndicate.runtime import Runtime
from syndicate.scheduling import jobs
from tests.test_approval import awaiting, reply, state  # noqa: F401 (the fixture)
from tests.test_corrections_flow import (  # noqa: F401 (fixtures)
    BEFORE_RELEASE,
    BODY,
    author_reply,
    delivered,
    feed,
    messages,
    poll,
)


@pytest.mark.parametrize(
    ("words", "answers", "counts"),
    [
        ("Approve", APPROVE_WORDS, True),
        ("approve.\n\nSent from my phone", APPROVE_WORDS, True),
        ("  Approved!  ", APPROVE_WORDS, True),
        ("Yes, approve, thanks", APPROVE_WORDS, True),
        ("OK approve please", APPROVE_WORDS, True),
        ("> approve\nNot yet", APPROVE_WORDS, False),
        ("approved? not yet", APPROVE_WORDS, False),
        ("approve?", APPROVE_WORDS, False),
        ("approve after the lawyer reads it", APPROVE_WORDS, False),
        ("approvals are on hold", APPROVE_WORDS, False),
        ("Send", SEND_WORDS, True),
        ("send it? no", SEND_WORDS, False),
        ("sending is a bad idea", SEND_WORDS, False),
        ("Don\u2019t send.", DROP_WORDS, True),
        ("drop", DROP_WORDS, True),
        ("dropbox link below", DROP_WORDS, False),
        ("", APPROVE_WORDS, False),
    ],
)
def test_only_the_whole_first_line_is_an_answer(
    words: str, answers: tuple[str, ...], counts: bool
) -> None:
    assert is_answer(first_line(words), answers) is counts


def test_approved_question_mark_not_yet_keeps_the_send_waiting(awaiting) -> None:  # noqa: F811
    cfg, engine, _, preview, send_id = awaiting
    result = handle_approval_reply(
        Runtime(cfg, engine=engine), reply(preview, "jane@example.com", "Approved? Not yet.")
    )
    assert not result.accepted
    assert "first line is not 'approve' alone" in result.reason
    assert "approved? not yet." in result.reason
    assert state(engine, send_id) == SendState.AWAITING_APPROVAL.value

    said_so = handle_approval_reply(
        Runtime(cfg, engine=engine), reply(preview, "jane@example.com", "Approve, thanks!")
    )
    assert said_so.accepted, said_so.reason
    assert state(engine, send_id) == SendState.SCHEDULED.value


def test_sending_is_a_bad_idea_sends_nothing_and_drop_still_drops(delivered) -> None:  # noqa: F811
    cfg, engine, handler, feed, _ = delivered  # noqa: F811
    feed.posts[2] = ("Walls and bread", BODY)
    poll(cfg, engine, BEFORE_RELEASE)
    jobs.tick(Runtime(cfg, engine=engine), at=BEFORE_RELEASE)
    [question] = messages(handler, "Send a correction", to="jane@example.com")

    for words in ("Sending is a bad idea.", "send it? no", "Dropbox link below"):
        result = handle_approval_reply(Runtime(cfg, engine=engine), author_reply(question, words))
        assert not result.accepted and "neither 'send' nor 'drop' alone" in result.reason
    jobs.tick(Runtime(cfg, engine=engine), at=BEFORE_RELEASE + timedelta(minutes=1))
    assert messages(handler, "UPDATED") == []
    assert listing.listed(engine)[0].state is rows.CorrectionState.PENDING

    dropped = handle_approval_reply(
        Runtime(cfg, engine=engine), author_reply(question, "Don\u2019t send.")
    )
    assert dropped.accepted, dropped.reason
    assert listing.listed(engine)[0].state is rows.CorrectionState.DROPPED
