"""Subscribers on the desk: search, counts by status and source, list growth, one person's
history, unsubscribe/resubscribe by the author (recorded), CSV import with the CLI's report
(`syndicate subscribers import` calls the same function), and the CLI's export."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from syndicate import db
from syndicate.audience import subscribers
from syndicate.desk import UPLOAD_PATH, charts, queries
from syndicate.desk.app import Desk, Handler
from syndicate.desk.auth import Session
from syndicate.errors import SyndicateError
from syndicate.models import RecipientKind
from syndicate.scheduling.timeparse import short

STATUSES = ("active", "unsubscribed", "bounced", "complained")


def _kind(value: str | None) -> RecipientKind | None:
    return RecipientKind(value) if value in {k.value for k in RecipientKind} else None


async def _list_page(
    desk: Desk, request: Request, session: Session, *, report: object = None, error: str = ""
) -> Response:
    params = request.query_params
    query = " ".join(params.get("q", "").split())[:200]
    kind = _kind(params.get("kind"))
    status = params.get("status") if params.get("status") in STATUSES else None
    rows = await run_in_threadpool(
        queries.people, desk.engine, query, kind.value if kind else None, status
    )
    counts = await run_in_threadpool(queries.people_counts, desk.engine)
    joined, left = await run_in_threadpool(queries.list_changes, desk.engine)
    growth = charts.growth(charts.weeks(joined, left, db.now().date()))
    return desk.page(
        "subscribers.html.j2",
        session,
        400 if error else 200,
        title="Subscribers",
        section="subscribers",
        rows=rows,
        counts=counts,
        growth=growth,
        q=query,
        kind=kind.value if kind else "",
        status=status or "",
        statuses=STATUSES,
        kinds=[k.value for k in RecipientKind],
        report=report,
        error=error,
        limit=queries.SEARCH_LIMIT,
    )


async def listing(desk: Desk, request: Request, session: Session) -> Response:
    return await _list_page(desk, request, session)


async def one(desk: Desk, request: Request, session: Session) -> Response:
    found = await run_in_threadpool(
        queries.person, desk.engine, int(request.path_params["recipient_id"])
    )
    if found is None:
        message = "No such subscriber."
        return desk.page("notice.html.j2", session, 404, title="Not found", message=message)
    zone = desk.settings.zone
    return desk.page(
        "person.html.j2",
        session,
        title=found.row.email,
        section="subscribers",
        person=found,
        done=request.query_params.get("done", ""),
        when=lambda value: short(db.as_utc(value), zone) if value else "",
    )


def _set_status(active: bool) -> Handler:
    async def change(desk: Desk, request: Request, session: Session) -> Response:
        recipient_id = int(request.path_params["recipient_id"])
        try:
            await run_in_threadpool(
                subscribers.set_status_by_author,
                desk.engine,
                recipient_id,
                active,
                where="on the desk",
            )
        except SyndicateError as exc:
            return desk.page("refused.html.j2", session, 400, title="Not changed", message=str(exc))
        word = "resubscribed" if active else "unsubscribed"
        return desk.redirect(f"/subscribers/{recipient_id}?done={word}")

    return change


def _safe_name(name: str) -> str:
    """The uploaded file's own name, as a plain file name (it names the file in the report)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name.replace("\\", "/")).name).strip("._")
    return (stem or "upload")[:80] + ("" if stem.lower().endswith(".csv") else ".csv")


def _import(desk: Desk, data: bytes, name: str, kind: RecipientKind, dry_run: bool) -> object:
    with tempfile.TemporaryDirectory(prefix="syndicate-desk-import-") as folder:
        path = Path(folder) / _safe_name(name)
        path.write_bytes(data)
        try:
            return subscribers.import_file(desk.engine, path, kind, dry_run=dry_run)
        except subscribers.ImportFormatError as exc:
            raise SyndicateError(f"{path.name}: {exc}") from None


async def upload(desk: Desk, request: Request, session: Session) -> Response:
    form = await desk.form(request)
    upload = form.get("file")
    kind = _kind(str(form.get("kind", ""))) or RecipientKind.READER
    dry_run = form.get("dry_run") == "yes"
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await _list_page(desk, request, session, error="Choose a CSV file to import.")
    data = await upload.read()
    try:
        report = await run_in_threadpool(_import, desk, data, upload.filename, kind, dry_run)
    except SyndicateError as exc:
        return await _list_page(desk, request, session, error=str(exc))
    label = _safe_name(upload.filename)
    return await _list_page(desk, request, session, report=(label, report))


async def export(desk: Desk, request: Request, session: Session) -> Response:
    kind = _kind(request.query_params.get("kind"))
    text = await run_in_threadpool(subscribers.export_csv, desk.engine, kind)
    name = f"{kind.value}s.csv" if kind else "subscribers.csv"
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


ROUTES: list[tuple[str, Handler, str]] = [
    ("/subscribers", listing, "GET"),
    ("/subscribers/export.csv", export, "GET"),
    (UPLOAD_PATH, upload, "POST"),
    ("/subscribers/{recipient_id:int}", one, "GET"),
    ("/subscribers/{recipient_id:int}/unsubscribe", _set_status(False), "POST"),
    ("/subscribers/{recipient_id:int}/resubscribe", _set_status(True), "POST"),
]
