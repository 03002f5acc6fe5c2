"""An editor's column draft is not the newsletter: its own List-Id, no unsubscribe banner, and
text attachments that keep their charset, alike in the reference EmailMessage and the one MIME
writer, and in the headers the SendGrid API carries."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from syndicate import db, settings
from syndicate.delivery.compose import compose
from syndicate.delivery.dispatch import make_sender
from syndicate.delivery.mime import as_bytes
from syndicate.feedwatch import watch
from syndicate.models import Channel, Edition, Recipient, RecipientKind
from syndicate.render import EditionCache, make_environment, render_edition
from syndicate.render.editor_profile import EditorProfile
from tests.support.delivery import reference_email

PARSER = BytesParser(policy=policy.default)
EDITOR = Recipient(21, RecipientKind.EDITOR, "desk@paper.example", "Desk Editor")
READER = Recipient(22, RecipientKind.READER, "zoe@example.org", "Zoë Pérez")


def _editions(project: Path) -> dict[Channel, Edition]:
    cfg = settings.load(project / "settings.toml")
    engine = db.connect(cfg.database_url)
    watch.poll(engine, cfg)
    with engine.connect() as conn:
        post = db.posts.find_post(conn, "latest")
    env = make_environment(cfg.path(cfg.paths.templates))
    editions = {c: EditionCache(post, c, cfg, env).for_recipient(None) for c in Channel}
    # An editor who takes both text formats, so a .txt and an .html are attached.
    profile = EditorProfile(formats=("txt", "html"))
    editions[Channel.COLUMN] = render_edition(post, Channel.COLUMN, cfg, env, profile=profile)
    return editions


def _both_ways(edition: Edition, recipient: Recipient, project: Path) -> list[EmailMessage]:
    sender = make_sender(settings.load(project / "settings.toml"), b"k" * 32)
    date = db.now()
    message = compose(edition, recipient, 5, sender, date)
    reference = reference_email(message).as_bytes(policy=policy.SMTP)
    return [PARSER.parsebytes(reference), PARSER.parsebytes(as_bytes(message))]


def test_column_drafts_have_their_own_list_and_no_unsubscribe_banner(project: Path) -> None:
    editions = _editions(project)
    for msg in _both_ways(editions[Channel.COLUMN], EDITOR, project):
        assert msg["List-Id"] == "Notes from the Margin column <column.notes.example.com>"
        assert msg["List-Unsubscribe"] is None
        assert msg["List-Unsubscribe-Post"] is None
        assert msg["Precedence"] is None
    for msg in _both_ways(editions[Channel.NEWSLETTER], READER, project):
        assert msg["List-Id"] == "Notes from the Margin <newsletter.notes.example.com>"
        assert msg["List-Unsubscribe"].strip().startswith("<https://notes.example.com/newsl")
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    sender = make_sender(settings.load(project / "settings.toml"), b"k" * 32)
    column = dict(compose(editions[Channel.COLUMN], EDITOR, 5, sender, db.now()).all_headers())
    assert "List-Unsubscribe" not in column and "List-Unsubscribe-Post" not in column
    assert column["List-Id"].endswith("<column.notes.example.com>")


def test_text_attachments_keep_utf8_charset_and_quoted_printable(project: Path) -> None:
    edition = _editions(project)[Channel.COLUMN]
    originals = {a.filename: a.data for a in edition.attachments}
    assert {name.rsplit(".", 1)[1] for name in originals} == {"txt", "html"}
    for msg in _both_ways(edition, EDITOR, project):
        files = list(msg.iter_attachments())
        assert len(files) == 2
        for part in files:
            assert part.get_content_charset() == "utf-8", part.get_filename()
            assert part["Content-Transfer-Encoding"] == "quoted-printable"
            assert part.get_content_maintype() == "text"
            assert part.get_content().replace("\r\n", "\n") == originals[
                part.get_filename()
            ].decode("utf-8").replace("\r\n", "\n")
        text = next(p for p in files if p.get_filename().endswith(".txt")).get_content()
        assert "’" in text or "—" in text  # the curly quotes and dashes arrive as written
