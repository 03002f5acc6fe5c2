"""The desk's home: what goes out next, what is going out now (refreshed by htmx), what went
out and how it fared, unread replies, and the feed's health (its last check, success and error)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from syndicate import db
from syndicate.desk import charts, corrections, queries
from syndicate.desk.app import Desk, Handler
from syndicate.desk.auth import Session
from syndicate.feedwatch.health import health as feed_health
from syndicate.scheduling.timeparse import short


async def home(desk: Desk, request: Request, session: Session) -> Response:
    data = await run_in_threadpool(queries.home, desk.engine, desk.settings)
    health = await run_in_threadpool(feed_health, desk.engine, desk.settings)
    pending = await run_in_threadpool(corrections.panel, desk.engine, desk.settings)
    zone = desk.settings.zone
    checked = health.last_check.checked_at if health.last_check else None
    stale_after = timedelta(minutes=2 * desk.settings.daemon.poll_minutes)
    feed = {
        "source": desk.settings.feed.source,
        "checked": short(checked, zone) if checked else "",
        "stale": checked is None or desk.runtime.now() - checked > stale_after,
        "failing": health.failing,
        # The line `syndicate status` prints: one function makes both.
        "line": health.line(zone),
        "daemon": data.daemon,
        "heartbeat": short(data.daemon.heartbeat_at, zone) if data.daemon else "",
    }
    return desk.page(
        "home.html.j2",
        session,
        title="Desk",
        section="home",
        data=data,
        pending=pending,
        feed=feed,
        when=lambda v: _when(v, zone),
        bar=outcome_bar,
    )


async def progress(desk: Desk, request: Request, session: Session) -> Response:
    rows = await run_in_threadpool(queries.in_progress, desk.engine)
    return desk.page("_progress.html.j2", session, rows=rows)


def outcome_bar(send: queries.SendRow) -> Markup:
    counts = {
        "sent": send["n_sent"],
        "deferred": send["n_deferred"],
        "failed": send["n_failed"],
        "bounced": send.bounced,
        "unsubscribed": send.unsubscribed_after,
    }
    return charts.outcome(counts, f"Send {send['id']} ({send['channel']})")


def _when(value: datetime | None, zone: ZoneInfo) -> str:
    return short(db.as_utc(value), zone) if value else ""


ROUTES: list[tuple[str, Handler, str]] = [
    ("/", home, "GET"),
    ("/progress", progress, "GET"),
]
