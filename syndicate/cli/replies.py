"""`syndicate replies …`: what came back by email, filed per post, and exports for WordPress."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import typer

from syndicate import db
from syndicate.cli.common import app, console, print_json, runtime_of
from syndicate.cli.tables import new_table, print_table
from syndicate.errors import NotFoundError, SyndicateError
from syndicate.models import ReplyKind
from syndicate.scheduling.timeparse import short

if TYPE_CHECKING:
    from syndicate.db.replies import ReplyListing
    from syndicate.runtime import Runtime

replies_app = typer.Typer(help="Comments, editors' answers and everything else that came back.")
app.add_typer(replies_app, name="replies")


class Format(StrEnum):
    WXR = "wxr"


def _post_id(rt: Runtime, post: str | None) -> int | None:
    if post is None:
        return None
    with rt.engine.connect() as conn:
        found = db.posts.find_post(conn, post)
    if found is None:
        raise NotFoundError(f"no post {post!r} (give an id, guid, link or 'latest')")
    return found.id


def _comments(rt: Runtime, post: str | None) -> list[ReplyListing]:
    """Readers' comments, of one post when `post` names one (for WordPress)."""
    post_id = _post_id(rt, post)
    with rt.engine.connect() as conn:
        return db.replies.list_replies(conn, post_id=post_id, kinds=[ReplyKind.COMMENT.value])


def local_time(value: datetime | None, zone: ZoneInfo) -> str | None:
    """ISO 8601 in the author's zone, to the second: 2026-12-01T07:00:12-05:00."""
    moment = db.as_utc(value)
    return moment.astimezone(zone).isoformat(timespec="seconds") if moment else None


@replies_app.command("list")
def list_replies(
    ctx: typer.Context,
    post: Annotated[str | None, typer.Option(help="Post id, guid, link or 'latest'.")] = None,
    kind: Annotated[
        list[ReplyKind] | None, typer.Option(help="Only this kind; repeatable.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
    unread: Annotated[bool, typer.Option("--unread", help="Only replies not marked read.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """List replies, newest first."""
    rt = runtime_of(ctx)
    settings = rt.settings
    post_id = _post_id(rt, post)
    with rt.engine.connect() as conn:
        rows = db.replies.list_replies(
            conn,
            post_id=post_id,
            kinds=[k.value for k in kind or []],
            limit=limit,
            unread_only=unread,
        )
    zone = settings.zone
    data: list[dict[str, Any]] = [
        {
            "id": r.id,
            "received_at": local_time(r.received_at, zone),
            "kind": r.kind,
            "state": r.state,
            "read": r.read_at is not None,
            "source": r.source,
            "post": r.post_id,
            "post_title": r.post_title,
            "recipient": r.recipient_id,
            "sender": r.sender,
            "sender_name": r.sender_name,
            "subject": r.subject,
            "text": r.text,
            "addresses": list(r.addresses),
            "temporary": bool(r.temporary),
            "reason": r.reason,
            "detail": r.detail,
        }
        for r in rows
    ]
    if as_json:
        print_json(data)
        return
    if not data:
        console.print("No replies yet.")
        return
    table = new_table(
        f"Replies (times in {settings.author.timezone}; * unread)",
        ("id", "received", "kind", "state", "from", "post"),
    )
    table.add_column("text", overflow="fold")
    for r in rows:
        failed = ", ".join(r.addresses)
        if failed:
            failed = ("temporary: " if r.temporary else "failed: ") + failed
        words = failed or r.text or r.reason
        table.add_row(
            str(r.id) + ("" if r.read_at is not None else "*"),
            short(r.received_at, zone),
            r.kind,
            r.state,
            r.sender,
            r.post_title or "",
            words if len(words) < 80 else words[:77] + "…",
        )
    print_table(table)


@replies_app.command()
def export(
    ctx: typer.Context,
    format: Annotated[Format, typer.Option("--format", help="wxr: WordPress import file.")] = (
        Format.WXR
    ),
    post: Annotated[str | None, typer.Option(help="Only this post.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Export readers' comments for WordPress (Tools → Import → WordPress), as pending."""
    rt = runtime_of(ctx)
    settings = rt.settings
    rows = _comments(rt, post)
    from syndicate.inbound import wordpress

    text = wordpress.wxr(settings.site.name, settings.site.url, rows)
    if out:
        out.write_text(text, encoding="utf-8")
        console.print(f"{len(rows)} comment(s) written to {out}")
    else:
        print(text, end="")


@replies_app.command()
def push(
    ctx: typer.Context,
    post: Annotated[str | None, typer.Option(help="Only this post.")] = None,
) -> None:
    """Post readers' comments to the WordPress site in [inbound.wordpress] as pending comments."""
    rt = runtime_of(ctx)
    rows = _comments(rt, post)
    from syndicate.inbound import wordpress

    for reply_id, result in wordpress.push(rt.settings.inbound.wordpress, rows):
        console.print(f"reply {reply_id}: {result}", highlight=False)


@replies_app.command("read")
def mark_read(
    ctx: typer.Context,
    ids: Annotated[
        list[int] | None, typer.Argument(metavar="ID...", help="Reply ids (see 'replies list').")
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Mark every reply read.")] = False,
) -> None:
    """Mark replies read: 'syndicate status' counts only unread ones."""
    if bool(ids) == every:
        raise SyndicateError("give reply ids or --all (not both)")
    rt = runtime_of(ctx)
    with rt.engine.begin() as conn:
        if ids:
            missing = sorted(set(ids) - db.replies.existing_reply_ids(conn, ids))
            if missing:
                raise NotFoundError(
                    "no reply " + ", ".join(map(str, missing)) + " (see 'syndicate replies list')"
                )
        marked = db.replies.mark_replies_read(conn, None if every else list(ids or []))
    console.print(f"{marked} repl{'y' if marked == 1 else 'ies'} marked read.")
