"""`syndicate worker`: a stateless sender for PostgreSQL, as many as you like, on any machine.

It sends every send that is going out (state 'sending'), claiming batches alongside the daemon,
`syndicate send` and other workers; it plans nothing new and schedules nothing (the daemon
does). SIGTERM or Ctrl-C: the batch in flight is finished and recorded, then it exits.
"""

from __future__ import annotations

from typing import Annotated

import typer

from syndicate import db
from syndicate.cli.common import app, console, runtime_of
from syndicate.cli.lazy import lazy_module
from syndicate.cli.sending import interruptible
from syndicate.errors import SyndicateError
from syndicate.models import SendState

dispatch = lazy_module("syndicate.delivery.dispatch")


@app.command()
def worker(
    ctx: typer.Context,
    concurrency: Annotated[
        int, typer.Option(min=0, help="SMTP connections of this worker (0: the settings').")
    ] = 0,
    poll_seconds: Annotated[
        float, typer.Option(min=0.1, help="How often to look for sends going out.")
    ] = 5.0,
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Exit once no send is going out.")
    ] = False,
) -> None:
    """Send whatever is going out, side by side with other workers (PostgreSQL only)."""
    rt = runtime_of(ctx)
    if concurrency:
        from syndicate.runtime import Runtime

        settings = rt.settings
        smtp = settings.transport.smtp.model_copy(update={"connections": concurrency})
        settings = settings.model_copy(
            update={"transport": settings.transport.model_copy(update={"smtp": smtp})}
        )
        rt = Runtime(settings)
    engine = rt.engine
    if engine.dialect.name != "postgresql":
        raise SyndicateError(
            "syndicate worker needs PostgreSQL: on SQLite one process sends (syndicate run)"
        )
    sent = 0
    with interruptible() as interruption:
        while not interruption.stop.is_set():
            with engine.connect() as conn:
                going_out = db.sends.ids_in_state(conn, SendState.SENDING)
            for send_id in going_out:
                summary = dispatch.run_send(
                    rt, send_id, rt.transport(), should_stop=interruption.stop.is_set
                )
                sent += summary.sent
            if until_idle and not going_out:
                break
            interruption.stop.wait(poll_seconds)
    console.print(f"worker: {sent} message(s) sent")
    if interruption.signum:
        raise typer.Exit(interruption.exit_code)
