"""Pending corrections and proposed kills on the desk's home page, with Send and Drop: each
calls the function `syndicate corrections send ID` / `corrections drop ID` calls."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from syndicate import db
from syndicate.corrections import control, listing, outgoing
from syndicate.corrections.rows import Correction, CorrectionAction
from syndicate.db import Engine
from syndicate.desk.app import Desk, Handler
from syndicate.desk.auth import Session
from syndicate.errors import SyndicateError
from syndicate.settings import Settings


@dataclass(frozen=True)
class Pending:
    """One open correction as the panel shows it: what it would go out as, and to how many."""

    correction: Correction
    kind: str  # UPDATED, CORRECTION or KILL, as it would go if sent now
    editors: int  # editors who had the column and are still active
    what: str  # the paragraph-level description (or, for a kill, why)


def pending(engine: Engine, at: datetime) -> list[Pending]:
    found = []
    for c in listing.listed(engine, open_only=True):
        with engine.connect() as conn:
            editors = len(
                db.corrections.reached(conn, c.send_id, db.corrections.sent_ids(conn, c.post_id))
            )
        kind = outgoing.advisory_for(engine, c, at).kind.label
        what = f"proposed: {c.origin}" if c.action is CorrectionAction.KILL else c.summary
        found.append(Pending(c, kind, editors, what))
    return found


def panel(engine: Engine, settings: Settings) -> list[Pending]:
    return pending(engine, db.now())


def _correction_id(request: Request) -> int:
    return int(request.path_params["correction_id"])


def _confirm(desk: Desk, session: Session, action: str, correction_id: int) -> Response:
    """The question asked before Send or Drop acts."""
    try:
        found, _ = listing.show(desk.engine, correction_id)
    except SyndicateError as exc:
        return desk.page("notice.html.j2", session, 404, title="Not found", message=str(exc))
    if action == "send":
        what = (
            f"Send correction {correction_id} of “{found.title}” to every editor who had the "
            "column? It cannot be taken back."
        )
    else:
        what = f"Drop correction {correction_id} of “{found.title}”? Editors are not told."
    return desk.page(
        "confirm.html.j2",
        session,
        title="Please confirm",
        action=f"/corrections/{correction_id}/{action}",
        what=what,
        fields={},
        back="/",
    )


async def send(desk: Desk, request: Request, session: Session) -> Response:
    """What `syndicate corrections send ID` does, once the author confirms."""
    correction_id = _correction_id(request)
    if (await desk.form(request)).get("confirm") != "yes":
        return await run_in_threadpool(_confirm, desk, session, "send", correction_id)
    try:
        outcome = await run_in_threadpool(
            lambda: control.send(desk.runtime, correction_id, by="desk")
        )
    except SyndicateError as exc:
        return desk.page("notice.html.j2", session, 400, title="Not sent", message=str(exc))
    failed = f", {outcome.failed} not" if outcome.failed else ""
    message = (
        f"Correction {correction_id}: {outcome.kind.upper()} sent to {outcome.sent} editor(s)"
        f"{failed}."
    )
    return desk.page("notice.html.j2", session, title="Sent", message=message)


async def drop(desk: Desk, request: Request, session: Session) -> Response:
    """What `syndicate corrections drop ID` does, once the author confirms."""
    correction_id = _correction_id(request)
    if (await desk.form(request)).get("confirm") != "yes":
        return await run_in_threadpool(_confirm, desk, session, "drop", correction_id)
    try:
        c = await run_in_threadpool(control.drop, desk.runtime, correction_id)
    except SyndicateError as exc:
        return desk.page("notice.html.j2", session, 400, title="Not dropped", message=str(exc))
    message = f"Correction {c.id} of “{c.title}” dropped; editors are not told."
    return desk.page("notice.html.j2", session, title="Dropped", message=message)


ROUTES: list[tuple[str, Handler, str]] = [
    ("/corrections/{correction_id:int}/send", send, "POST"),
    ("/corrections/{correction_id:int}/drop", drop, "POST"),
]
