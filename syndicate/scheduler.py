"""The jobs the clock runs: sync lists, poll the feed, run the sends that are due.

`run_once` is one tick of the daemon; the APScheduler daemon (`syndicate run`) calls the same
functions on a schedule.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine

from syndicate import dispatch, store, subscribers, watch
from syndicate.errors import FeedError
from syndicate.models import RecipientKind, SendSummary
from syndicate.render import make_environment
from syndicate.settings import Settings
from syndicate.transports import Transport, make_transport

log = logging.getLogger(__name__)

ProgressFactory = Callable[[int, str], dispatch.Progress | None]


@dataclass
class RunReport:
    poll: watch.PollReport | None = None
    feed_error: str = ""
    summaries: list[SendSummary] = field(default_factory=list)
    list_problems: list[str] = field(default_factory=list)


def sync_lists(engine: Engine, settings: Settings) -> list[str]:
    problems = []
    for kind, relative in (
        (RecipientKind.READER, settings.subscribers.readers),
        (RecipientKind.EDITOR, settings.subscribers.editors),
    ):
        report = subscribers.sync(engine, settings.path(relative), kind)
        log.info(
            "%s list %s: %d added, %d updated, %d unchanged, %d problem(s)",
            kind.value,
            relative,
            report.added,
            report.updated,
            report.unchanged,
            len(report.problems),
        )
        problems.extend(str(p) for p in report.problems)
    return problems


def run_due_sends(
    engine: Engine,
    settings: Settings,
    *,
    at: datetime | None = None,
    transport_factory: Callable[[Settings], Transport] = make_transport,
    progress_factory: ProgressFactory | None = None,
) -> list[SendSummary]:
    key = store.hmac_key(engine, settings.hmac_key_from_env())
    sender = dispatch.make_sender(settings, key)
    env = make_environment(settings.path(settings.paths.templates))
    summaries = []
    with engine.connect() as conn:
        due = store.due_sends(conn, at or store.now())
    for send in due:
        progress = progress_factory(send["id"], send["channel"]) if progress_factory else None
        summaries.append(
            dispatch.run_send(
                engine,
                send["id"],
                settings,
                env,
                transport_factory(settings),
                sender,
                batch_size=settings.transport.smtp.batch_size,
                progress=progress,
            )
        )
    return summaries


def run_once(
    engine: Engine,
    settings: Settings,
    *,
    at: datetime | None = None,
    transport_factory: Callable[[Settings], Transport] = make_transport,
    progress_factory: ProgressFactory | None = None,
) -> RunReport:
    """One tick: a broken feed is reported but sends already due still go out."""
    report = RunReport()
    report.list_problems = sync_lists(engine, settings)
    try:
        report.poll = watch.poll(engine, settings, at)
    except FeedError as exc:
        report.feed_error = str(exc)
        log.error("%s", exc)
    report.summaries = run_due_sends(
        engine,
        settings,
        at=at,
        transport_factory=transport_factory,
        progress_factory=progress_factory,
    )
    return report
