"""`syndicate preview`: render a post as a recipient would get it, sending nothing."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from syndicate import db
from syndicate.cli.common import app, console, runtime_of
from syndicate.errors import NotFoundError, SettingsError, SyndicateError, no_such_post
from syndicate.models import Attachment, Channel, Edition, Recipient, RecipientKind

if TYPE_CHECKING:
    from syndicate.db import Connection
    from syndicate.delivery.message import OutboundMessage
    from syndicate.settings import Settings


@dataclass(frozen=True)
class Rendered:
    """Everything a format writer may need: the edition and the message built from it."""

    edition: Edition
    message: OutboundMessage
    settings: Settings


Writer = Callable[[Rendered], bytes]


def eml(message: OutboundMessage, settings: Settings) -> bytes:
    """The message exactly as the configured transport would write it: the same MIME writer,
    DKIM-signed when configured. (SendGrid builds its own message from the same value.)"""
    from syndicate.delivery.dkim import signer_for
    from syndicate.delivery.mime import as_bytes

    data = as_bytes(message)
    sign = signer_for(settings)
    return sign(data) if sign else data


def _eml(rendered: Rendered) -> bytes:
    return eml(rendered.message, rendered.settings)


def _part(kind: str) -> Writer:
    """The text or HTML part, filled for the preview's recipient."""

    def write(rendered: Rendered) -> bytes:
        from syndicate.delivery.compose import fill

        message = rendered.message
        template = message.content.html if kind == "html" else message.content.text
        return fill(template, message.values, escape=kind == "html").encode()

    return write


# Format name → writer. Other channels' formats (docx, nitf …) are added here by name.
WRITERS: dict[str, Writer] = {"eml": _eml, "html": _part("html"), "txt": _part("plain")}
# A column draft file by --out suffix when no --format is given.
COLUMN_SUFFIXES: dict[str, str] = {".docx": "docx", ".xml": "nitf", ".nitf": "nitf"}
SUFFIXES: dict[str, str] = {".eml": "eml", ".html": "html", ".htm": "html", ".txt": "txt"}


def choose_format(fmt: str | None, out: Path | None, open_it: bool) -> str:
    """--format wins, then the --out suffix, then html for --open, else plain text."""
    if fmt:
        if fmt not in WRITERS:
            raise SettingsError(
                f"--format {fmt!r} is not known; choose one of {', '.join(sorted(WRITERS))}"
            )
        return fmt
    if out is not None and out.suffix.lower() in SUFFIXES:
        return SUFFIXES[out.suffix.lower()]
    return "html" if open_it else "txt"


@app.command()
def preview(
    ctx: typer.Context,
    post_ref: Annotated[
        str, typer.Argument(metavar="POST", help="Post id, guid, URL or 'latest'.")
    ],
    channel: Annotated[Channel, typer.Option(help="Which edition to render.")] = Channel.NEWSLETTER,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="eml (the whole message, signed if DKIM is set up), html or txt; for "
            "--channel column, txt, docx, html or nitf write the draft file an editor gets "
            "attached. Default: from --out's suffix; html with --open; else txt.",
        ),
    ] = None,
    editor: Annotated[
        str | None,
        typer.Option(
            help="Column: render for this editor of editors.csv (time zone, quotes, links, "
            "word limit); default: the settings' editor defaults."
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write here instead of stdout.")] = None,
    open_it: Annotated[
        bool, typer.Option("--open", help="Write to a file (--out or a temporary one) and open it.")
    ] = False,
) -> None:
    """Render a post as a recipient would receive it, without sending or recording anything.

    The recipient is you (settings: author), so names and links are filled in as a reader sees
    them; tokens in the links are real but belong to no send.
    """
    import tempfile
    import webbrowser

    from syndicate.delivery.compose import compose
    from syndicate.delivery.dispatch import make_sender
    from syndicate.render import EditionCache, render_edition
    from syndicate.render.column import preview_file
    from syndicate.scheduling.embargo import draft_embargo

    _refuse_unknown_suffix(out)
    rt = runtime_of(ctx)
    settings = rt.settings
    if channel is Channel.COLUMN and not fmt and out is not None:
        fmt = COLUMN_SUFFIXES.get(out.suffix.lower())
    draft_file = channel is Channel.COLUMN and fmt is not None and fmt != "eml"
    chosen = choose_format(None if draft_file else fmt, out, open_it)
    engine = rt.engine
    with engine.connect() as conn:
        post = db.posts.find_post(conn, post_ref)
    if post is None:
        raise no_such_post(post_ref)
    env = rt.templates
    sample = Recipient(
        id=0,
        kind=channel.audience,
        email=settings.author.email,
        name=settings.author.name,
    )
    if channel is Channel.COLUMN:
        with engine.connect() as conn:
            sample = _column_editor(conn, editor) or sample
            embargo = draft_embargo(conn, post.id or 0)
        if draft_file:
            assert fmt is not None
            _write_column_file(preview_file(post, settings, env, fmt, embargo, sample), out)
            return
        edition = EditionCache(post, channel, settings, env, embargo).for_recipient(sample)
    else:
        edition = render_edition(post, channel, settings, env)
    message = compose(edition, sample, 0, make_sender(settings, rt.key), rt.now())
    data = WRITERS[chosen](Rendered(edition, message, settings))
    if out is None and not open_it:
        sys.stdout.write(data.decode("utf-8", errors="replace"))
        return
    if out is None:
        folder = Path(tempfile.mkdtemp(prefix="syndicate-preview-"))
        out = folder / f"post-{post.id}-{channel.value}.{chosen}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    console.print(f"Wrote {out} ({len(data):,} bytes, {chosen})")
    if channel is Channel.NEWSLETTER:
        _report_size(edition, settings)
    if open_it:
        opened = webbrowser.open(out.resolve().as_uri())
        if not opened:
            console.print(f"No browser found to open it; open {out} yourself.")


def _refuse_unknown_suffix(out: Path | None) -> None:
    """A file named x.pdf must hold a PDF: refuse rather than write HTML or text into it."""
    if out is None or not out.suffix:
        return
    known = sorted(set(SUFFIXES) | set(COLUMN_SUFFIXES))
    if out.suffix.lower() not in known:
        raise SettingsError(
            f"--out {out}: syndicate cannot write a {out.suffix} file; name it "
            f"{', '.join(known)} (.docx, .xml and .nitf with --channel column)"
        )


def _report_size(edition: Edition, settings: Settings) -> None:
    size, limit = len(edition.html.encode()), settings.channels.newsletter.max_html_bytes
    clipped = "cut with a continue-reading link" if 'class="more clipped"' in edition.html else ""
    note = f"; {clipped}" if clipped else ""
    console.print(f"HTML part: {size:,} of {limit:,} bytes allowed{note}")


def _column_editor(conn: Connection, address: str | None) -> Recipient | None:
    if not address:
        return None
    found = db.recipients.find_recipient(conn, RecipientKind.EDITOR, address)
    if found is None:
        raise NotFoundError(
            f"no editor {address!r} in the database; add them to subscribers/editors.csv and "
            "run 'syndicate run --once' (or 'syndicate status') to load the list"
        )
    return found


def _write_column_file(draft: Attachment, out: Path | None) -> None:
    if out is None:
        if not draft.content_type.startswith(("text/", "application/xml")):
            raise SyndicateError(f"a {draft.filename} draft is binary: pass --out FILE to write it")
        sys.stdout.write(draft.data.decode("utf-8"))
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(draft.data)
    console.print(f"Wrote {out} ({len(draft.data):,} bytes, {draft.content_type.split(';')[0]})")
