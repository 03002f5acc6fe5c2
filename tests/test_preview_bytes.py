"""`syndicate preview --format eml` writes the bytes the transport sends.

The preview is a message to the author that belongs to no send (send 0, recipient 0); the real
delivery to the same person is one of a send. So the two may differ only where a delivery is
named or dated: the Message-ID, the Date (and the MIME boundary, which is derived from the
content, date included), and the signed tokens in Reply-To, List-Unsubscribe and the links.
Everything else must be byte for byte the same.
"""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser
from pathlib import Path

from syndicate import db, settings
from syndicate.delivery import compose, dispatch, mime
from syndicate.delivery.message import Mailbox
from syndicate.delivery.notices import notice
from syndicate.delivery.transports import make_transport
from syndicate.models import Recipient, RecipientKind
from syndicate.render import placeholders as ph
from tests.support.cli import run_cli

AUTHOR = "jane@example.com"


def _header(data: bytes, name: bytes) -> bytes:
    found = re.search(rb"^" + name + rb": (.*(?:\r\n[ \t].*)*)\r\n", data, re.MULTILINE)
    assert found, name
    return found.group(1)


def test_preview_eml_is_the_delivery_but_for_the_named_differences(project: Path) -> None:
    with (project / "subscribers" / "readers.csv").open("a") as readers:
        readers.write(f"{AUTHOR},Jane Marlowe\n")  # the author reads her own newsletter too
    sent = run_cli(project, "run", "--once")
    assert sent.returncode == 0, sent.stderr
    out = project / "preview.eml"
    previewed = run_cli(project, "preview", "latest", "--format", "eml", "--out", str(out))
    assert previewed.returncode == 0, previewed.stderr
    [delivered_file] = (project / "outbox").glob(f"d*-{AUTHOR}.eml")
    preview, delivered = out.read_bytes(), delivered_file.read_bytes()

    cfg = settings.load(project / "settings.toml")
    engine = db.connect(cfg.database_url)
    key = db.meta.hmac_key(engine, None)
    with engine.connect() as conn:
        reader = db.recipients.find_recipient(conn, RecipientKind.READER, AUTHOR)
        [send] = [s for s in db.sends.list_sends(conn) if s.channel == "newsletter"]
    assert reader is not None
    sender = dispatch.make_sender(cfg, key)
    own = compose.recipient_values(reader, send.id, sender)
    as_preview = compose.recipient_values(
        Recipient(0, RecipientKind.READER, AUTHOR, reader.name), 0, sender
    )

    # The named differences, put back to the delivery's: then not one byte may differ.
    named = preview
    for placeholder in (ph.REPLY_ADDRESS, ph.UNSUBSCRIBE_URL, ph.UNSUBSCRIBE_MAILTO):
        assert as_preview[placeholder] in preview.decode()
        named = named.replace(as_preview[placeholder].encode(), own[placeholder].encode())
    for name in (b"Message-ID", b"Date"):
        named = named.replace(_header(preview, name), _header(delivered, name))
    boundary = rb'boundary="(=_a[0-9a-f]+)"'
    preview_boundary = re.search(boundary, preview)
    delivered_boundary = re.search(boundary, delivered)
    assert preview_boundary and delivered_boundary
    named = named.replace(preview_boundary.group(1), delivered_boundary.group(1))
    assert named == delivered
    assert preview != delivered  # the differences named above are real ones

    parsed = BytesParser(policy=policy.default).parsebytes(preview)
    assert parsed["To"].addresses[0].addr_spec == AUTHOR
    assert "%%" not in preview.decode()


def test_preview_writer_and_every_byte_transport_write_the_same_bytes(project: Path) -> None:
    """With the inputs fixed (one message value), the preview's writer and the configured
    transport's file are identical: there is one MIME writer."""
    from syndicate.cli.preview import eml

    cfg = settings.load(project / "settings.toml")
    message = notice(
        sender=Mailbox("Jane Marlowe", "jane@notes.example.com"),
        to=Mailbox("Zoë Pérez", "zoe.perez@example.org"),
        subject="Café — “quotes” and a %%NAME%% that stays text",
        text="Dear %%NAME%%,\n.leading dot\n" + "é" * 300 + "\n",
        html="<p>Hi %%EMAIL%%</p>",
        date=db.now(),
        label="check",
        number=7,
    )
    with make_transport(cfg) as transport:
        [result] = transport.send_messages([message])
    written = Path(result.detail).read_bytes()
    assert written == eml(message, cfg) == mime.as_bytes(message)
    parsed = BytesParser(policy=policy.default).parsebytes(written)
    # A notice's text is never filled: a stranger's "%%NAME%%" stays what it was.
    text = parsed.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text.startswith("Dear %%NAME%%,\n.leading dot")
    assert parsed.get_body(("html",)).get_content() == "<p>Hi %%EMAIL%%</p>\r\n"
    assert parsed["Subject"] == "Café — “quotes” and a %%NAME%% that stays text"
