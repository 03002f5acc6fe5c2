"""`syndicate preview`: render a post as a recipient would get it, sending nothing."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from syndicate import store
from syndicate.cli.common import app, console, open_store, settings_of
from syndicate.compose import compose
from syndicate.dispatch import make_sender
from syndicate.errors import NotFoundError
from syndicate.models import Channel, Recipient
from syndicate.render import make_environment, render_edition


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
    edition = render_edition(post, channel, settings, env)
    sample = Recipient(
        id=0,
        kind=channel.audience,
        email=settings.author.email,
        name=settings.author.name,
    )
    key = store.hmac_key(engine, settings.hmac_key_from_env())
    message = compose(edition, sample, 0, make_sender(settings, key), store.now())
    suffix = out.suffix.lower() if out else ".txt"
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
