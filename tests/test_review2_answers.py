"""Review: an answer by email must not release a send when the author's first line does not."""

from __future__ import annotations

from syndicate.inbound.steps.approve import handle_approval_reply
from syndicate.models import SendState
from syndicate.runtime import Runtime
from tests.test_approval import awaiting, reply, state  # noqa: F401 (the fixture)


def test_approve_ellipsis_not_yet_in_latin1_labelled_mail_keeps_the_send_waiting(
    awaiting,  # noqa: F811
) -> None:
    """Outlook and many clients label Windows-1252 text "iso-8859-1"; byte 0x85 is "…" there
    (and every mail reader shows it so: WHATWG maps the label to windows-1252). Python reads it
    as U+0085 NEL, which str.splitlines() takes for a line break: the first line becomes
    "approve" though the author wrote "Approve… not yet"."""
    cfg, engine, _, preview, send_id = awaiting
    template = reply(preview, "jane@example.com", "placeholder")
    headers = b"".join(
        f"{name}: {value}\r\n".encode()
        for name, value in template.items()
        if name.lower() not in ("content-type", "content-transfer-encoding", "mime-version")
    )
    raw = (
        headers
        + b"MIME-Version: 1.0\r\n"
        + b'Content-Type: text/plain; charset="iso-8859-1"\r\n'
        + b"Content-Transfer-Encoding: 8bit\r\n\r\n"
        + b"Approve\x85 not yet, the date in paragraph two is wrong.\r\n"
    )
    result = handle_approval_reply(Runtime(cfg, engine=engine), template, raw=raw)
    assert not result.accepted, result.reason
    assert state(engine, send_id) == SendState.AWAITING_APPROVAL.value


def test_characters_python_splits_lines_at_but_mail_does_not_are_not_line_ends() -> None:
    """Mail lines end at CRLF; NEL, form feed, the file/group separators and U+2028/U+2029 are
    not a reply's line breaks, so "approve<FS>not yet" must not read as "approve"."""
    from syndicate.inbound.answers import first_line, is_answer
    from syndicate.inbound.steps.approve import APPROVE_WORDS

    for odd in ("\x85", "\x0c", "\x1c", "\x1d", "\x1e", "\u2028", "\u2029"):
        said = first_line(f"Approve{odd} not yet")
        assert not is_answer(said, APPROVE_WORDS), repr(odd)
