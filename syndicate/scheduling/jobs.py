"""What the daemon's clock runs, each a function of the Runtime: sync the lists and poll the
feed, make the digests that are due, ask for approvals, ask about and send corrections, and run
the sends whose time has come. `run_once` is one pass of them all (`syndicate run --once`);
`tick` is the every-minute part.

Sends live in our own table, so a daemon that was down simply finds what became due on its
first tick and runs it once; each due send is claimed atomically before it starts.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from syndicate import db
from syndicate.audience import subscribers
from syndicate.db.sends import Send
from syndicate.delivery import dispatch
from syndicate.errors import FeedError
from syndicate.feedwatch import watch
from syndicate.models import Channel, RecipientKind, SendState, SendSummary
from syndicate.render.digest import digest_post
from syndicate.scheduling import approval, embargo
from syndicate.scheduling.policies import next_cron
from syndicate.scheduling.timeparse import describe
from syndicate.settings import Settings

if TYPE_CHECKING:
    from syndicate.runtime import Runtime

log = logging.getLogger(__name__)

ProgressFactory = Callable[[int, str], dispatch.Progress | None]


class StopRequested(Exception):
    """Raised between batches when the daemon was asked to stop (SIGTERM); carries the
    summaries of the sends that ran before."""

    def __init__(self, summaries: list[SendSummary] | None = None) -> None:
        super().__init__("stop requested")
        self.summaries = summaries or []


@dataclass(frozen=True)
class Waiting:
    """A send whose time has come but which an embargo still holds back."""

    send_id: int
    channel: str
    title: str
    release: embargo.Release


@dataclass
class RunReport:
    poll: watch.PollReport | None = None
    feed_error: str = ""
    summaries: list[SendSummary] = field(default_factory=list)
    list_problems: list[str] = field(default_factory=list)
    digests: list[int] = field(default_factory=list)
    previews: int = 0
    corrections: int = 0  # advisories sent (syndicate.corrections)
    waiting: list[Waiting] = field(default_factory=list)


def sync_lists(runtime: Runtime) -> list[str]:
    engine, settings = runtime.engine, runtime.settings
    problems: list[str] = []
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


# --- digests ------------------------------------------------------------------------------------


def make_due_digests(runtime: Runtime, at: datetime) -> list[int]:
    """Create the digest send when its cron time has come and posts are waiting.

    Posts whose column is still under embargo wait for a later digest (when the newsletter
    respects embargoes). Nothing is created when nothing new is waiting.
    """
    engine, settings = runtime.engine, runtime.settings
    policy = watch.channel_policy(settings, Channel.NEWSLETTER)
    with engine.begin() as conn:
        queue = db.sends.digest_queue(conn)
        if not queue:
            return []
        first_queued = db.as_utc(queue[0].queued_at)
        assert first_queued is not None
        if policy.kind == "digest":
            # A post an embargo kept out of the last digest waits for the next one (one digest
            # per cron time: the digest's own post is named after it).
            last = db.sends.last_digest_at(conn)
            fire = next_cron(policy.cron, settings.zone, max(first_queued, last or first_queued))
            if fire > at:
                return []
        else:
            log.warning(
                "%d post(s) wait for a digest but the newsletter policy is now %r: "
                "sending them as one digest now",
                len(queue),
                policy.text,
            )
            fire = at
        posts = []
        held = embargo.post_releases(
            conn,
            [row.post_id for row in queue],
            respect_column=settings.channels.newsletter.respect_embargo,
        )
        for row in queue:
            release = held.get(row.post_id)
            if release is not None and release.holds(at):
                continue
            post = db.posts.get_post(conn, row.post_id)
            assert post is not None
            posts.append(post)
        if not posts:
            return []
        digest = digest_post(posts, settings, runtime.templates, fire)
        digest_id = db.posts.insert_post(conn, digest, eligible=False)
        send_id = db.sends.create_send(
            conn, digest_id, Channel.NEWSLETTER, fire, policy=policy.text or "digest"
        )
        assert send_id is not None
        db.sends.assign_digest(conn, [p.id for p in posts if p.id is not None], send_id)
    log.info(
        "digest send %s for %s: %d post(s): %s",
        send_id,
        describe(fire, settings.zone),
        len(posts),
        "; ".join(p.title for p in posts),
    )
    return [send_id]


# --- sends ----------------------------------------------------------------------------------------


def run_due_sends(
    runtime: Runtime,
    *,
    at: datetime | None = None,
    progress_factory: ProgressFactory | None = None,
    stop: threading.Event | None = None,
) -> list[SendSummary]:
    """Run every due send. Each is claimed atomically first, so a send the author held or
    cancelled a moment ago does not start; with `stop` set, stops after the batch in flight."""
    engine = runtime.engine
    summaries: list[SendSummary] = []
    due, _ = split_due(runtime, at or runtime.now())
    for send in due:
        if stop is not None and stop.is_set():
            raise StopRequested(summaries)
        with engine.begin() as conn:
            if not db.sends.claim_send(conn, send.id):
                log.info("send %s was held or cancelled before it started", send.id)
                continue
        progress = progress_factory(send.id, send.channel) if progress_factory else None
        try:
            summary = dispatch.run_send(
                runtime,
                send.id,
                runtime.transport(),
                progress=progress,
                should_stop=stop.is_set if stop is not None else None,
            )
        except StopRequested:
            raise
        except Exception as exc:
            # One broken send (a template error, say) must not block the others; it stays
            # 'sending' with its deliveries queued and is tried again at the next tick.
            log.exception("send %s failed and stays queued: %s", send.id, exc)
            summary = SendSummary(
                send.id,
                Channel(send.channel),
                f"post {send.post_id}",
                error=f"{type(exc).__name__}: {exc}",
            )
        summaries.append(summary)
        if stop is not None and stop.is_set():
            raise StopRequested(summaries)
    return summaries


def split_due(runtime: Runtime, at: datetime) -> tuple[list[Send], list[Waiting]]:
    """The sends whose time has come: those that may go now, and those an embargo holds back.

    A send left 'sending' by an interrupted run always resumes.
    """
    settings = runtime.settings
    with runtime.engine.connect() as conn:
        candidates = db.sends.due_sends(conn, at)
        held = embargo.releases(
            conn, candidates, respect_column=settings.channels.newsletter.respect_embargo
        )
        go, waiting = [], []
        for send in candidates:
            release = held.get(send.id)
            if send.state == SendState.SENDING.value or release is None or not release.holds(at):
                go.append(send)
                continue
            post = db.posts.get_post(conn, send.post_id)
            title = post.title if post is not None else f"post {send.post_id}"
            waiting.append(Waiting(send.id, send.channel, title, release))
    return go, waiting


def describe_wait(wait: Waiting, settings: Settings) -> str:
    return (
        f"Send {wait.send_id} ({wait.channel}) {wait.title!r} is due but waits for "
        f"{wait.release.explain(settings.zone)}"
    )


def tick(
    runtime: Runtime,
    *,
    at: datetime | None = None,
    progress_factory: ProgressFactory | None = None,
    stop: threading.Event | None = None,
) -> RunReport:
    """What the every-minute job does: digests, approval previews, then due sends."""
    when = at or runtime.now()
    report = RunReport()
    # A broken digest template or an unreachable author must not keep due sends from going out.
    try:
        report.digests = make_due_digests(runtime, when)
    except Exception:
        log.exception("could not make the digest; posts stay queued and it is retried next tick")
    try:
        report.previews = approval.request_previews(runtime)
    except Exception:
        log.exception("could not email approval previews; retried next tick")
    try:
        from syndicate.corrections import control as corrections

        report.corrections = corrections.tick(runtime, when)
    except Exception:
        log.exception("could not ask about or send corrections; retried next tick")
    _, report.waiting = split_due(runtime, when)
    report.summaries = run_due_sends(
        runtime,
        at=when,
        progress_factory=progress_factory,
        stop=stop,
    )
    return report


def poll_feed(runtime: Runtime, at: datetime | None = None) -> RunReport:
    """Sync the lists and poll the feed; a broken feed is logged, never fatal."""
    report = RunReport()
    report.list_problems = sync_lists(runtime)
    try:
        report.poll = watch.poll(runtime.engine, runtime.settings, at or runtime.now())
    except FeedError as exc:
        report.feed_error = str(exc)
        log.error("%s", exc)
    return report


def run_once(
    runtime: Runtime,
    *,
    at: datetime | None = None,
    progress_factory: ProgressFactory | None = None,
    stop: threading.Event | None = None,
) -> RunReport:
    """One pass: a broken feed is reported but sends already due still go out. With `stop`
    set (SIGINT/SIGTERM), the batch in flight is recorded and the pass ends there."""
    report = poll_feed(runtime, at)
    try:
        sent = tick(
            runtime,
            at=at,
            progress_factory=progress_factory,
            stop=stop,
        )
    except StopRequested as stopped:
        report.summaries = stopped.summaries
        return report
    report.summaries, report.digests, report.previews = sent.summaries, sent.digests, sent.previews
    report.waiting = sent.waiting
    return report


# --- inbox ----------------------------------------------------------------------------------------


def inbox_poller(settings: Settings) -> tuple[Callable[[Runtime], object] | None, str]:
    """The inbound pipeline's poll function when it exists and is configured, else why not."""
    try:
        inbound = importlib.import_module("syndicate.inbound")
    except ModuleNotFoundError:
        return None, "syndicate.inbound is not part of this installation"
    poll = getattr(inbound, "poll", None)
    if not callable(poll):
        return None, "syndicate.inbound has no poll(runtime) function"
    if not inbound.configured(settings):
        return None, "no mailbox configured ([inbound.imap] host or [inbound] maildir)"
    return poll, ""
