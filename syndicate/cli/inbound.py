"""`syndicate inbound …`: receive one message (MTA pipe), poll IMAP/Maildir, classify a message."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from syndicate.cli import common
from syndicate.cli.common import app, print_json, runtime_of
from syndicate.errors import SyndicateError

inbound_app = typer.Typer(
    help="Replies by email: receive, poll and classify inbound messages.", no_args_is_help=True
)
app.add_typer(inbound_app, name="inbound")


@inbound_app.command()
def receive(
    ctx: typer.Context,
    recipient: Annotated[
        list[str] | None,
        typer.Option(
            "--recipient",
            "-r",
            help="Envelope recipient (e.g. Postfix's ${original_recipient}); repeatable.",
        ),
    ] = None,
) -> None:
    """Read one message on stdin and file it (for an MTA pipe or alias).

    Exit 0 when stored (a refused one too: too large or malformed, recorded), 75 (EX_TEMPFAIL:
    the MTA retries later) on a transient problem, 65 when the input is empty or not an email.
    When `syndicate run` listens on [inbound] lmtp_socket, the message is handed to it.
    """
    # The MTA shows what we print to the sender (65) or in its log (75): our log lines go to
    # syslog when there is one, else to stderr only when the sender will not read them.
    from syndicate.inbound.sources import handover, stdin

    logs = _PipeLogs()
    read, handover.already_read = handover.already_read, None  # read by a failed hand-over
    if read is None:
        try:  # the validated settings: the pipe's own reading (tomllib) may not take a value
            limit = runtime_of(ctx).settings.inbound.max_message_bytes
        except Exception:  # reported below, where the runtime is needed: exit 75
            limit = handover.DEFAULT_MAX_BYTES
        read = handover.Read(*stdin.read_bounded(sys.stdin.buffer, limit))
    raw = read.raw
    problem = stdin.not_a_message(raw)
    if problem:
        logs.close(stdin.EX_DATAERR)
        _say(stdin.NOT_AN_EMAIL)
        raise typer.Exit(stdin.EX_DATAERR)
    try:
        rt = runtime_of(ctx)
        code, outcome = stdin.receive_bytes(
            rt, raw, envelope_recipients=tuple(recipient or ()), size=read.size
        )
    except Exception as exc:  # anything here is worth a retry: the MTA keeps the message
        logs.close(stdin.EX_TEMPFAIL)
        _say(f"syndicate inbound receive: temporary failure, retry later: {exc}")
        raise typer.Exit(stdin.EX_TEMPFAIL) from None
    logs.close(code)
    _say(stdin.describe(outcome))
    raise typer.Exit(code)


def _say(line: str) -> None:
    """One plain line on stderr: no colour, no wrapping, no timestamp (the MTA quotes it)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class _PipeLogs:
    """While a message is received, log records are kept back from stderr: they go to syslog
    (facility mail, where the MTA logs too) when /dev/log exists, else to stderr at the end
    unless the exit status is 65, whose output the sender reads."""

    def __init__(self) -> None:
        root = logging.getLogger()
        self.saved = list(root.handlers)
        self.held = logging.handlers.BufferingHandler(capacity=10_000)
        self.held.setFormatter(logging.Formatter("syndicate: %(levelname)s: %(message)s"))
        self.syslog: logging.Handler | None = None
        if Path(SYSLOG_SOCKET).exists():
            try:
                self.syslog = logging.handlers.SysLogHandler(
                    SYSLOG_SOCKET, logging.handlers.SysLogHandler.LOG_MAIL
                )
                self.syslog.setFormatter(logging.Formatter("syndicate: %(message)s"))
            except OSError:
                self.syslog = None
        root.handlers[:] = [self.syslog or self.held]

    def close(self, code: int) -> None:
        from syndicate.inbound.sources import stdin

        root = logging.getLogger()
        root.handlers[:] = self.saved
        if self.syslog is not None:
            self.syslog.close()
        elif code != stdin.EX_DATAERR:
            for record in self.held.buffer:
                _say(self.held.format(record))
        self.held.buffer.clear()


SYSLOG_SOCKET = "/dev/log"


@inbound_app.command()
def poll(ctx: typer.Context) -> None:
    """Fetch new messages from the IMAP mailbox and the Maildir set in settings, file each one,
    and retry forwards that failed before."""
    from syndicate import inbound

    rt = runtime_of(ctx)
    if not inbound.configured(rt.settings):
        common.err.print(
            "nothing to poll: set [inbound.imap] host or [inbound] maildir in settings.toml "
            "(or pipe messages to `syndicate inbound receive`)"
        )
        raise typer.Exit(1)
    report = inbound.poll(rt)
    outcomes, forwarded, pending = report.outcomes, report.forwarded, report.pending
    counts: dict[str, int] = {}
    for outcome in outcomes:
        label = "duplicate" if outcome.duplicate else outcome.kind.value
        counts[label] = counts.get(label, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing new"
    common.console.print(f"Inbound: {len(outcomes)} message(s): {summary}.")
    if forwarded or pending:
        common.console.print(f"Forwards retried: {forwarded} sent, {pending} still pending.")


@inbound_app.command()
def classify(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
    message: Annotated[
        Path | None, typer.Argument(help="An .eml file; stdin when omitted.", show_default=False)
    ] = None,
) -> None:
    """Show what a message would be filed as, changing nothing (no record, no mail)."""
    from syndicate.inbound import pipeline

    try:
        raw = message.read_bytes() if message else sys.stdin.buffer.read()
    except OSError as exc:
        raise SyndicateError(f"{message}: cannot read it ({exc.strerror or exc})") from None
    rt = runtime_of(ctx)
    with rt.engine.connect() as conn:
        inbound, result = pipeline.classify_bytes(conn, raw, rt)
    data: dict[str, Any] = {
        "kind": result.kind.value,
        "post": result.post_id,
        "recipient": result.recipient_id,
        "send": result.identity.send_id if result.post_id else None,
        "matched_by": result.identity.via or None,
        "addresses": list(result.addresses),
        "temporary": result.temporary,
        "verified": result.verified,
        "text": result.text,
        "reason": result.reason,
        "sender": inbound.sender,
        "subject": inbound.subject,
        "size": len(raw),
    }
    if as_json:
        print_json(data)
        return
    from rich.text import Text

    from syndicate.cli.plain import text

    # The message is a stranger's: its words are shown literally (plain.text), never as markup.
    common.console.print(Text(data["kind"], style="bold") + text(f": {data['reason']}"))
    for name in ("post", "recipient", "sender", "subject", "addresses"):
        if data[name]:
            shown = ", ".join(data[name]) if name == "addresses" else data[name]
            common.console.print(text(f"  {name}: {shown}"))
    if data["text"]:
        common.console.print(text("  text:\n    " + data["text"].replace("\n", "\n    ")))
