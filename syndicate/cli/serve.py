"""`syndicate serve`: the web app (subscribe, confirm, unsubscribe, webhooks) under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from syndicate.cli.common import app, settings_of
from syndicate.settings import Web


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option("--host", help=f"Default: web.host in settings.toml ({Web().host}).")
    ] = "",
    port: Annotated[
        int | None,
        typer.Option("--port", help=f"Default: web.port in settings.toml ({Web().port})."),
    ] = None,
) -> None:
    """Run the subscribe/unsubscribe web app; put it behind https at mail.base_url."""
    import uvicorn

    from syndicate.web import create_app

    settings = settings_of(ctx)
    uvicorn.run(
        create_app(settings),
        host=host or settings.web.host,
        port=port or settings.web.port,
        # The app reads X-Forwarded-For itself, by hop count (web.trusted_proxies); uvicorn's
        # own handling would rewrite the client address before the app sees the real peer.
        proxy_headers=False,
        server_header=False,
        limit_concurrency=settings.web.max_connections,
        log_level="info",
    )
