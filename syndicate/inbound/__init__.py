"""Replies by email: every inbound message, whatever its entrance, runs one pipeline.

Entrances in sources/ (stdin: an MTA pipe, lmtp: the daemon's socket, imap, maildir, sendgrid:
Inbound Parse) hand the bytes to pipeline.process, which runs the steps in steps/, one module
each, in the order of pipeline.PIPELINE (parse, seen, identify, verify, bounce, autoreply,
text, approve, unsubscribe, spam, comment, file, forward) over one MessageContext
(context.py). notices.py writes the mail inbound sends; wordpress.py takes filed comments out
to WordPress.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from syndicate.runtime import Runtime
    from syndicate.settings import Settings


@dataclass
class InboxReport:
    """What one look at the mailboxes found, for the command line and the daemon's log."""

    sources: int = 0
    outcomes: list = field(default_factory=list)
    forwarded: int = 0
    pending: int = 0


def configured(settings: Settings) -> bool:
    """True when there is a mailbox to poll (IMAP or Maildir); pipes and webhooks need none."""
    return bool(settings.inbound.imap.host or settings.inbound.maildir)


def poll(runtime: Runtime) -> InboxReport:
    """Fetch and file new mail from the IMAP mailbox and the Maildir, then retry forwards."""
    from syndicate.inbound import pipeline
    from syndicate.inbound.sources import imap, maildir

    settings = runtime.settings
    report = InboxReport()
    if settings.inbound.imap.host:
        report.sources += 1
        report.outcomes += imap.poll(runtime)
    if settings.inbound.maildir:
        report.sources += 1
        report.outcomes += maildir.poll(runtime, settings.path(settings.inbound.maildir))
    report.forwarded, report.pending = pipeline.retry_forwards(runtime)
    return report
