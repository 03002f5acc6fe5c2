"""`syndicate preview`: render a post as a recipient would get it, sending nothing."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import Connection

from syndicate import store
from syndicate.cli.common import app, console, open_store, settings_of
from syndicate.compose import compose
from syndicate.dispatch import make_sender
from syndicate.errors import NotFoundError, SyndicateError
from syndicate.models import Attachment, Channel, Recipient, RecipientKind
from syndicate.render import EditionCache, make_environment, render_edition
from syndicate.render.column import preview_file


@app.command()
def preview(
    ctx: typer.Context,
    post_ref: Annotated[
        str, typer.Argument(metavar="POST", help="Post id, guid, URL or 'latest'.")
    ],
    channel: Annotated[Channel, typer.Option(help="Which edition to render.")] = Channel.NEWSLETTER,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write here (.eml, .html or .txt by suffix).")
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="Column: the draft file to write: txt, docx, html or nitf (NITF 3.6 XML).",
        ),
    ] = None,
    editor: Annotated[
        str | None,
        typer.Option(
            help="Column: render for this editor of editors.csv (time zone, quotes, links, "
            "word limit); default: the settings' editor defaults."
        ),
    ] = None,
) -> None:
    """Render a post as a recipient would receive it, without sending or recording anything."""
    settings = settings_of(ctx)
    engine = open_store(settings)
    with engine.connect() as conn:
        post = store.find_post(conn, post_ref)
    if post is None:
        raise NotFoundError(
            f"no post {post_ref!r} in the database; run 'syndicate run --once' to read the feed, "
            "or use 'latest'"
        )
    env = make_environment(settings.path(settings.paths.templates))
    sample = Recipient(
        id=0,
        kind=channel.audience,
        email=settings.author.email,
        name=settings.author.name,
    )
    if channel is Channel.COLUMN:
        with engine.connect() as conn:
            sample = _column_editor(conn, editor) or sample
            embargo = store.embargo_of(conn, post.id or 0, channel)
        if fmt:
            _write_column_file(preview_file(post, settings, env, fmt, embargo, sample), out)
            return
        edition = EditionCache(post, channel, settings, env, embargo).for_recipient(sample)
    else:
        edition = render_edition(post, channel, settings, env)
    key = store.hmac_key(engine, settings.hmac_key_from_env())
    message = compose(edition, sample, 0, make_sender(settings, key), store.now())
    suffix = out.suffix.lower() if out else ".txt"
    if fmt:
        suffix = "." + fmt.lower()
    if suffix == ".eml":
        data = message.as_bytes()
    elif suffix in (".html", ".htm"):
        body = message.get_body(("html",))
        data = body.get_content().encode() if body else b""
    else:
        body = message.get_body(("plain",))
        data = body.get_content().encode() if body else b""
    if out is None:
        sys.stdout.write(data.decode())
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    console.print(f"Wrote {out} ({len(data):,} bytes)")


def _column_editor(conn: Connection, address: str | None) -> Recipient | None:
    if not address:
        return None
    found = store.find_recipient(conn, RecipientKind.EDITOR, address)
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
