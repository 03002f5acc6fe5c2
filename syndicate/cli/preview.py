"""`syndicate preview`: render a post as a recipient would get it, sending nothing."""

from __future__ import annotations

import sys
import tempfile
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Annotated

import typer

from syndicate import store
from syndicate.cli.common import app, console, open_store, settings_of
from syndicate.compose import compose
from syndicate.dispatch import make_sender
from syndicate.dkim import signer_for
from syndicate.errors import NotFoundError, SettingsError
from syndicate.models import Channel, Edition, Recipient
from syndicate.render import make_environment, render_edition
from syndicate.settings import Settings


@dataclass(frozen=True)
class Rendered:
    """Everything a format writer may need: the edition and the message built from it."""

    edition: Edition
    message: EmailMessage
    settings: Settings


Writer = Callable[[Rendered], bytes]


def _eml(rendered: Rendered) -> bytes:
    """The message exactly as the transport would send it, DKIM-signed when configured."""
    data = rendered.message.as_bytes(policy=policy.SMTP)
    sign = signer_for(rendered.settings)
    return sign(data) if sign else data


def _part(subtype: str) -> Writer:
    def write(rendered: Rendered) -> bytes:
        body = rendered.message.get_body((subtype,))
        return body.get_content().encode() if body else b""

    return write


# Format name → writer. Other channels' formats (docx, nitf …) are added here by name.
WRITERS: dict[str, Writer] = {"eml": _eml, "html": _part("html"), "txt": _part("plain")}
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
            help="eml (the whole message, signed if DKIM is set up), html or txt. "
            "Default: from --out's suffix; html with --open; else txt.",
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
    settings = settings_of(ctx)
    chosen = choose_format(fmt, out, open_it)
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


def _report_size(edition: Edition, settings: Settings) -> None:
    size, limit = len(edition.html.encode()), settings.channels.newsletter.max_html_bytes
    clipped = "cut with a continue-reading link" if 'class="more clipped"' in edition.html else ""
    note = f"; {clipped}" if clipped else ""
    console.print(f"HTML part: {size:,} of {limit:,} bytes allowed{note}")
