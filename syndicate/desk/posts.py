"""A post on the desk: the reader edition in a sandboxed frame (320/600 px, light/dark, its size
against Gmail's clip), the column draft per distinct editor profile with its files, and the
author's actions on its sends.

Every action calls the function `syndicate schedule/hold/approve/cancel/reschedule` and
`syndicate send --test` call (syndicate.sends), with the same guards, and asks first: a first
POST shows what would happen (times parsed and echoed in full), a second with `confirm=yes` acts.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from syndicate import db
from syndicate.desk import queries
from syndicate.desk.app import Desk, Handler
from syndicate.desk.auth import Session
from syndicate.desk.home import outcome_bar
from syndicate.errors import SyndicateError
from syndicate.models import Attachment, Channel, DeliveryState, Recipient
from syndicate.scheduling import send_control as control
from syndicate.scheduling.timeparse import TIME_HELP, describe, parse_future
from syndicate.settings import Settings

# Gmail shows "[Message clipped]" past about 102 KB of HTML (research.md).
GMAIL_CLIP_BYTES = 102 * 1024
# The reader edition in its frame: no scripts, no forms, nothing but its own styles and images;
# the frame itself is sandboxed (no allow-* flags), so it is its own opaque origin.
EDITION_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; "
    "font-src https: data:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'; sandbox"
)
DARK_MEDIA = re.compile(r"@media\s*\(\s*prefers-color-scheme\s*:\s*dark\s*\)")
COLUMN_FORMATS = {"txt": "txt", "docx": "docx", "html": "html", "xml": "nitf"}
ACTIONS = {
    "hold": "Hold",
    "approve": "Approve",
    "cancel": "Cancel",
}
DONE = {
    "scheduled": "Scheduled.",
    "hold": "Held: it will not go out until you approve it.",
    "approve": "Approved: it goes out at its time (at once if that has passed).",
    "cancel": "Cancelled: messages already delivered stay delivered.",
    "reschedule": "Rescheduled.",
    "test": "Test copy sent to you.",
}


@dataclass(frozen=True)
class Draft:
    """The column as one group of editors with the same profile gets it."""

    index: int
    label: str
    editors: int
    text: str
    formats: tuple[str, ...]


def _reader_html(desk: Desk, page: queries.PostPage) -> str:
    """The reader edition as the author would receive it (placeholders filled for them)."""
    from syndicate.delivery.compose import compose, fill
    from syndicate.delivery.dispatch import make_sender
    from syndicate.render import render_edition

    edition = render_edition(page.post, Channel.NEWSLETTER, desk.settings, desk.runtime.templates)
    sample = Recipient(
        id=0,
        kind=Channel.NEWSLETTER.audience,
        email=desk.settings.author.email,
        name=desk.settings.author.name,
    )
    message = compose(edition, sample, 0, make_sender(desk.settings, desk.key), db.now())
    return fill(message.content.html, message.values, escape=True)


def _profiles(page: queries.PostPage, settings: Settings) -> list[tuple[Recipient | None, int]]:
    """One editor standing for each distinct profile, with how many share it, in a fixed order."""
    from syndicate.render.column import profile_defaults
    from syndicate.render.editor_profile import profile_of

    groups: dict[tuple[str, ...], list[Recipient]] = {}
    for editor in page.editors:
        profile, _ = profile_of(editor, profile_defaults(settings))
        groups.setdefault(profile.key() if profile else (), []).append(editor)
    if not groups:
        return [(None, 0)]
    return [(members[0], len(members)) for _, members in sorted(groups.items())]


def _column_file(
    desk: Desk, page: queries.PostPage, editor: Recipient | None, fmt: str
) -> Attachment:
    from syndicate.render.column import preview_file

    env = desk.runtime.templates
    return preview_file(page.post, desk.settings, env, fmt, page.column_embargo, editor)


def _drafts(desk: Desk, page: queries.PostPage) -> list[Draft]:
    from syndicate.render.column import profile_defaults
    from syndicate.render.editor_profile import profile_of

    drafts = []
    for index, (editor, count) in enumerate(_profiles(page, desk.settings)):
        profile, _ = profile_of(editor, profile_defaults(desk.settings))
        if profile is None:
            label = "Default profile (no editors yet)"
        else:
            parts = [profile.timezone, f"{profile.quotes} quotes"]
            parts += [f"at most {profile.word_limit} words"] if profile.word_limit else []
            parts += ["links kept"] if profile.links else []
            label = ", ".join(parts)
        text = _column_file(desk, page, editor, "txt").data.decode("utf-8")
        drafts.append(Draft(index, label, count, text, tuple(COLUMN_FORMATS)))
    return drafts


def _post_id(request: Request) -> int:
    return int(request.path_params["post_id"])


async def _load(desk: Desk, post_id: int) -> queries.PostPage | None:
    return await run_in_threadpool(queries.post_page, desk.engine, desk.settings, post_id)


def _not_found(desk: Desk, session: Session, what: str) -> Response:
    return desk.page("notice.html.j2", session, 404, title="Not found", message=f"No {what}.")


async def show(
    desk: Desk,
    request: Request,
    session: Session,
    post_id: int,
    *,
    error: str = "",
    status: int = 200,
) -> Response:
    """The post's page; after a refused action, with the one line saying why (status 400)."""
    page = await _load(desk, post_id)
    if page is None:
        return _not_found(desk, session, "such post")
    html = await run_in_threadpool(_reader_html, desk, page)
    drafts = await run_in_threadpool(_drafts, desk, page)
    width = "320" if request.query_params.get("width") == "320" else "600"
    scheme = "dark" if request.query_params.get("scheme") == "dark" else "light"
    done = DONE.get(request.query_params.get("done", ""), "")
    return desk.page(
        "post.html.j2",
        session,
        status,
        title=page.post.title,
        page=page,
        size=len(html.encode("utf-8")),
        clip=GMAIL_CLIP_BYTES,
        limit=desk.settings.channels.newsletter.max_html_bytes,
        drafts=drafts,
        width=width,
        scheme=scheme,
        done=done,
        error=error,
        time_help=TIME_HELP,
        when=lambda value: describe(db.as_utc(value), desk.settings.zone) if value else "",
        channels=[c for c in Channel],
        bar=outcome_bar,
    )


async def show_post(desk: Desk, request: Request, session: Session) -> Response:
    return await show(desk, request, session, _post_id(request))


async def edition(desk: Desk, request: Request, session: Session) -> Response:
    page = await _load(desk, _post_id(request))
    if page is None:
        return _not_found(desk, session, "such post")
    html = await run_in_threadpool(_reader_html, desk, page)
    if request.query_params.get("scheme") == "dark":
        html = DARK_MEDIA.sub("@media all", html)
    headers = {
        "Content-Security-Policy": EDITION_CSP,
        "X-Frame-Options": "SAMEORIGIN",
        "Cache-Control": "no-store",
    }
    return HTMLResponse(html, headers=headers)


async def column_download(desk: Desk, request: Request, session: Session) -> Response:
    page = await _load(desk, _post_id(request))
    fmt = COLUMN_FORMATS.get(request.path_params["fmt"])
    if page is None or fmt is None:
        return _not_found(desk, session, "such draft")
    profiles = _profiles(page, desk.settings)
    index = int(request.path_params["profile"])
    if index >= len(profiles):
        return _not_found(desk, session, "such editor profile")
    draft = await run_in_threadpool(_column_file, desk, page, profiles[index][0], fmt)
    disposition = "inline" if fmt == "txt" else "attachment"
    return Response(
        draft.data,
        media_type=draft.content_type,
        headers={
            "Content-Disposition": f'{disposition}; filename="{draft.filename}"',
            "Cache-Control": "no-store",
        },
    )


async def send_test(desk: Desk, request: Request, session: Session) -> Response:
    page = await _load(desk, _post_id(request))
    if page is None:
        return _not_found(desk, session, "such post")
    form = await desk.form(request)
    channel = Channel(str(form.get("channel", "newsletter")))
    address = desk.settings.author.email
    try:
        await run_in_threadpool(control.send_test_copy, desk.runtime, page.post, channel, address)
    except SyndicateError as exc:
        return await show(desk, request, session, page.post.id or 0, error=str(exc), status=502)
    return desk.redirect(f"/posts/{page.post.id}?done=test")


# --- scheduling -------------------------------------------------------------------------------


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError("no time zone")
    return value


def _read_times(desk: Desk, form: Any) -> tuple[datetime, datetime | None]:
    """The confirmed instants, or the author's phrases read exactly as the CLI reads them."""
    zone, now = desk.settings.zone, db.now()
    if form.get("confirm") == "yes":
        embargo = str(form.get("embargo_at", ""))
        return _instant(str(form.get("at_at", ""))), _instant(embargo) if embargo else None
    at = parse_future(str(form.get("at", "")).strip(), zone, now)
    embargo_text = str(form.get("embargo", "")).strip()
    if not embargo_text:
        return at, None
    return at, parse_future(embargo_text, zone, now, "embargo", read_from=at)


def _confirm(
    desk: Desk, session: Session, action: str, what: str, fields: dict[str, str], back: str
) -> Response:
    return desk.page(
        "confirm.html.j2",
        session,
        title="Please confirm",
        action=action,
        what=what,
        fields=fields,
        back=back,
    )


async def schedule(desk: Desk, request: Request, session: Session) -> Response:
    post_id = _post_id(request)
    page = await _load(desk, post_id)
    if page is None:
        return _not_found(desk, session, "such post")
    form = await desk.form(request)
    zone = desk.settings.zone
    try:
        channel = Channel(str(form.get("channel", "")))
        at, embargo = _read_times(desk, form)
        if form.get("confirm") != "yes":
            what = (
                f"Schedule the {channel.value} send of “{page.post.title}” at {describe(at, zone)}"
            )
            what += f", embargo until {describe(embargo, zone)}" if embargo else ""
            fields = {
                "channel": channel.value,
                "at_at": at.isoformat(),
                "embargo_at": embargo.isoformat() if embargo else "",
            }
            return _confirm(
                desk, session, f"/posts/{post_id}/schedule", what + ".", fields, f"/posts/{post_id}"
            )
        await run_in_threadpool(
            lambda: control.schedule(desk.engine, post_id, channel, at, embargo, zone=zone)
        )
    except (SyndicateError, ValueError) as exc:
        return await show(desk, request, session, post_id, error=str(exc), status=400)
    return desk.redirect(f"/posts/{post_id}?done=scheduled")


SendHandler = Callable[[Desk, Request, Session, db.sends.Send, Any], Awaitable[Response]]


def _on_send(handle: SendHandler) -> Handler:
    """`handle` for the send the path names, with the form posted (no such send: a 404)."""

    async def handler(desk: Desk, request: Request, session: Session) -> Response:
        send_id = int(request.path_params["send_id"])
        send = await run_in_threadpool(queries.send_row, desk.engine, send_id)
        if send is None:
            return _not_found(desk, session, "such send")
        return await handle(desk, request, session, send, await desk.form(request))

    return handler


def _send_action(action: str) -> Handler:
    async def act(
        desk: Desk, request: Request, session: Session, send: db.sends.Send, form: Any
    ) -> Response:
        send_id, post_id = send.id, send.post_id
        try:
            if form.get("confirm") != "yes":
                what = f"{ACTIONS[action]} send {send_id} ({send.channel}, {send.state})."
                if action == "cancel":
                    counts = await run_in_threadpool(queries.delivery_counts, desk.engine, send_id)
                    what += (
                        f" {counts.get(DeliveryState.SENT, 0)} message(s) delivered stay delivered."
                    )
                return _confirm(
                    desk, session, f"/sends/{send_id}/{action}", what, {}, f"/posts/{post_id}"
                )
            await run_in_threadpool(_apply, desk, action, send_id)
        except SyndicateError as exc:
            return await show(desk, request, session, post_id, error=str(exc), status=400)
        return desk.redirect(f"/posts/{post_id}?done={action}")

    return _on_send(act)


def _apply(desk: Desk, action: str, send_id: int) -> None:
    """What `syndicate hold/approve/cancel SEND` does, with its guards."""
    if action == "hold":
        control.hold(desk.engine, send_id)
    elif action == "approve":
        control.refuse_past_embargo(desk.engine, send_id, db.now(), desk.settings.zone)
        control.approve(desk.engine, send_id, by="desk")
    elif action == "cancel":
        control.cancel(desk.engine, send_id)


@_on_send
async def reschedule(
    desk: Desk, request: Request, session: Session, send: db.sends.Send, form: Any
) -> Response:
    send_id, post_id = send.id, send.post_id
    zone = desk.settings.zone
    try:
        at, embargo = _read_times(desk, form)
        if form.get("confirm") != "yes":
            what = f"Move send {send_id} ({send.channel}) to {describe(at, zone)}"
            what += f", embargo until {describe(embargo, zone)}" if embargo else ""
            fields = {"at_at": at.isoformat(), "embargo_at": embargo.isoformat() if embargo else ""}
            return _confirm(
                desk,
                session,
                f"/sends/{send_id}/reschedule",
                what + ".",
                fields,
                f"/posts/{post_id}",
            )
        await run_in_threadpool(
            lambda: control.reschedule(desk.engine, send_id, at, embargo, zone=zone)
        )
    except (SyndicateError, ValueError) as exc:
        return await show(desk, request, session, post_id, error=str(exc), status=400)
    return desk.redirect(f"/posts/{post_id}?done=reschedule")


ROUTES: list[tuple[str, Handler, str]] = [
    ("/posts/{post_id:int}", show_post, "GET"),
    ("/posts/{post_id:int}/edition", edition, "GET"),
    ("/posts/{post_id:int}/column/{profile:int}.{fmt}", column_download, "GET"),
    ("/posts/{post_id:int}/test", send_test, "POST"),
    ("/posts/{post_id:int}/schedule", schedule, "POST"),
    ("/sends/{send_id:int}/reschedule", reschedule, "POST"),
    *[(f"/sends/{{send_id:int}}/{action}", _send_action(action), "POST") for action in ACTIONS],
]
