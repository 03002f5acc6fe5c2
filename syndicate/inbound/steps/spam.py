"""Step spam, optional: SpamAssassin through `spamc` (a running spamd) or the `spamassassin`
command, for what a person seems to have written. Both print the message back with
X-Spam-Flag / X-Spam-Status headers. Not run for a message whose In-Reply-To names a recipient
other than its writer: step comment files that one unmatched whatever it says."""

from __future__ import annotations

import logging
import os
import re
import subprocess
from dataclasses import dataclass

from syndicate.inbound.context import MessageContext, Writer
from syndicate.models import ReplyKind
from syndicate.settings import Inbound

log = logging.getLogger(__name__)

_COMMANDS = {
    "spamc": ["spamc"],
    # -L: no network tests, so a verdict does not depend on DNS blocklists being reachable.
    "spamassassin": ["spamassassin", "-L"],
}


@dataclass(frozen=True)
class Verdict:
    spam: bool
    score: float | None
    detail: str


def process(message: MessageContext) -> None:
    if message.writer is Writer.SOMEONE_ELSE and message.identity.via == "message-id":
        return
    verdict = check(message.inbound.raw, message.settings.inbound)
    if verdict is not None and verdict.spam:
        # A send-wide reply address names no one: spam sent to it is no reader's.
        message.decide(
            ReplyKind.SPAM, verdict.detail, as_theirs=message.writer is not Writer.SHARED
        )


def check(raw: bytes, config: Inbound) -> Verdict | None:
    """The checker's verdict, or None when checking is off or the checker could not run (a
    reply is never lost or called spam because the checker is down)."""
    if config.spam_check == "off":
        return None
    command = list(config.spam_command) or _COMMANDS[config.spam_check]
    try:
        result = subprocess.run(
            command, input=raw, capture_output=True, timeout=60, env=os.environ.copy()
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("spam check %s could not run (%s); treating as not spam", command[0], exc)
        return None
    head = result.stdout.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    text = head.decode("utf-8", "replace")
    flag = re.search(r"^X-Spam-Flag:\s*(\w+)", text, re.MULTILINE | re.IGNORECASE)
    status = re.search(r"^X-Spam-Status:\s*(\w+),\s*score=(-?[\d.]+)", text, re.M | re.I)
    if not flag and not status:
        log.warning(
            "spam check %s printed no X-Spam headers (exit %s)", command[0], result.returncode
        )
        return None
    spam = bool(flag and flag.group(1).upper() == "YES") or bool(
        status and status.group(1).lower() == "yes"
    )
    score = float(status.group(2)) if status else None
    return Verdict(spam, score, f"{command[0]}: score {score}")
