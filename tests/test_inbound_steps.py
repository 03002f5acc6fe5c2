"""The inbound pipeline reads as its steps: `PIPELINE` names exactly the modules in
syndicate/inbound/steps/, each with one `process(message)`; `classify` is a slice of the same
tuple and says of every fixture what `process` records; the docstrings list the real order; and
the approve step reads the one parsed message and the words the text step found."""

from __future__ import annotations

import inspect
import json
import re
import typing
from pathlib import Path

import html2text
import pytest

import syndicate.inbound
from syndicate import db
from syndicate.inbound import pipeline
from syndicate.inbound.context import MessageContext
from syndicate.inbound.steps import parse, text
from syndicate.models import SendState
from syndicate.runtime import Runtime
from tests.support.inbound import FIXTURES, cli, copy_project, edit, fixture, load, sent_fixtures
from tests.test_approval import awaiting, reply  # noqa: F401 (the fixture: a send awaiting approval)

STEPS = Path(pipeline.__file__).parent / "steps"


def test_pipeline_names_exactly_the_step_modules_present() -> None:
    present = sorted(p.stem for p in STEPS.glob("*.py") if p.stem != "__init__")
    assert sorted(pipeline.PIPELINE) == present
    assert len(set(pipeline.PIPELINE)) == len(pipeline.PIPELINE)


@pytest.mark.parametrize("name", pipeline.PIPELINE)
def test_every_step_has_one_process_over_the_message_context(name: str) -> None:
    process = pipeline.step(name).process
    hints = typing.get_type_hints(process)
    assert list(inspect.signature(process).parameters) == ["message"]
    assert hints == {"message": MessageContext, "return": type(None)}


def test_classify_is_the_deciding_stretch_of_the_same_tuple() -> None:
    steps = pipeline.PIPELINE
    deciding = steps[steps.index("identify") : steps.index("file")]
    assert deciding == pipeline.CLASSIFY
    stretches = pipeline.READ + pipeline.CLASSIFY + pipeline.RECORD + pipeline.AFTER_COMMIT
    assert stretches == steps


def test_the_docstrings_list_the_steps_in_their_real_order() -> None:
    table = re.findall(r"^    ([a-z]+) {2,}\S", pipeline.__doc__ or "", re.M)
    assert tuple(table) == pipeline.PIPELINE
    summary = re.search(r"pipeline\.PIPELINE \(([^)]*)\)", syndicate.inbound.__doc__ or "")
    assert summary, "syndicate/inbound/__init__.py should list the steps"
    assert tuple(re.split(r",\s*", " ".join(summary.group(1).split()))) == pipeline.PIPELINE


base = sent_fixtures("steps-base")[0]


def test_classify_says_of_every_fixture_what_process_records(base: Path, tmp_path: Path) -> None:
    """Each message is classified (changing nothing), then processed: the row holds the same
    kind, post, recipient, reason and words."""
    project = copy_project(base, tmp_path / "project")
    settings, engine, key = load(project)
    for path in sorted(FIXTURES.glob("*.eml")):
        raw = path.read_bytes()
        with engine.connect() as conn:
            before = len(db.replies.list_replies(conn))
            expected = pipeline.classify(
                conn, parse.parse(raw, source="test"), Runtime(settings, key=key)
            )
            assert len(db.replies.list_replies(conn)) == before, path.name
        outcome = pipeline.process(Runtime(settings, engine=engine, key=key), raw, source="test")
        with engine.connect() as conn:
            row = db.replies.get_reply(conn, outcome.reply_id)
        assert row is not None and not outcome.duplicate, path.name
        recorded = (row.kind, row.post_id, row.recipient_id, row.reason, row.text)
        assert recorded == (
            expected.kind.value,
            expected.post_id,
            expected.recipient_id,
            expected.reason,
            expected.text,
        ), path.name


def test_inbound_classify_reads_a_message_too_large_as_process_does(
    base: Path, tmp_path: Path
) -> None:
    """Over the size limit only the headers are read, by both: `inbound classify` says what is
    then recorded (refused, the writer's recipient and post, the same reason)."""
    project = copy_project(base, tmp_path / "project")
    raw = fixture("gmail_en.eml")
    edit(project / "settings.toml", "max_message_bytes = 10000000", "max_message_bytes = 1000")
    shown = cli(project, "inbound", "classify", "--json", str(FIXTURES / "gmail_en.eml"))
    assert shown.returncode == 0, shown.stderr.decode()
    said = json.loads(shown.stdout)
    settings, engine, key = load(project)
    outcome = pipeline.process(Runtime(settings, engine=engine, key=key), raw, source="test")
    assert outcome.too_large
    with engine.connect() as conn:
        row = db.replies.get_reply(conn, outcome.reply_id)
    assert row is not None
    recorded = (row.kind, row.post_id, row.recipient_id, row.reason)
    assert recorded == (said["kind"], said["post"], said["recipient"], said["reason"])
    assert said["kind"] == "refused" and said["recipient"] is not None


def _bottom_posted(preview, sender: str = "jane@example.com"):
    """The author answering below the quoted preview, as many clients do."""
    return reply(
        preview,
        sender,
        "On Tue, 24 Nov 2026 at 15:00, Syndicate <newsletter@notes.example.com> wrote:\n"
        "> A new newsletter is ready.\n\napprove",
    )


def test_the_approve_step_reads_the_words_the_text_step_found(awaiting) -> None:  # noqa: F811
    """A bottom-posted "approve" approves: the step reads the writer's own words (step text),
    not the first unquoted line (the attribution line, which the old approval parser read)."""
    cfg, engine, _, preview, send_id = awaiting
    key = db.meta.hmac_key(engine, cfg.hmac_key_from_env())
    raw = _bottom_posted(preview).as_bytes()
    outcome = pipeline.process(Runtime(cfg, engine=engine, key=key), raw, source="test")
    assert outcome.detail.startswith("approved: approved by reply"), outcome.detail
    with engine.connect() as conn:
        assert db.sends.send_state(conn, send_id) == SendState.SCHEDULED.value


def test_an_approval_is_parsed_once_and_turned_to_text_once(
    awaiting,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One parse of the bytes, one own-words extraction, one HTML-to-text conversion for an
    HTML answer: the approve step has no parser, header list or html2text call of its own."""
    cfg, engine, _, preview, send_id = awaiting
    key = db.meta.hmac_key(engine, cfg.hmac_key_from_env())
    answer = reply(preview, "jane@example.com", "approve")
    answer.set_content(
        "<div>approve</div><blockquote>A new newsletter is ready.</blockquote>", subtype="html"
    )
    calls: dict[str, int] = {"parse": 0, "own_words": 0, "html2text": 0}

    def counted(name: str, real):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(parse, "parse", counted("parse", parse.parse))
    monkeypatch.setattr(text, "own_words", counted("own_words", text.own_words))
    monkeypatch.setattr(
        html2text.HTML2Text, "handle", counted("html2text", html2text.HTML2Text.handle)
    )
    outcome = pipeline.process(
        Runtime(cfg, engine=engine, key=key), answer.as_bytes(), source="test"
    )
    assert outcome.detail.startswith("approved: approved by reply"), outcome.detail
    assert calls == {"parse": 1, "own_words": 1, "html2text": 1}
    with engine.connect() as conn:
        assert db.sends.send_state(conn, send_id) == SendState.SCHEDULED.value
