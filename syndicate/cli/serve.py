"""`syndicate serve`: the web app (subscribe, confirm, unsubscribe, webhooks) under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from syndicate.cli.common import app, runtime_of

# settings.Web()'s defaults, spelled out so that --help need not load the settings models
# (pydantic); tests/test_cli_startup.py checks they agree.
WEB_DEFAULT_HOST = "127.0.0.1"
WEB_DEFAULT_PORT = 8000


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[
        str,
        typer.Option("--host", help=f"Default: web.host in settings.toml ({WEB_DEFAULT_HOST})."),
    ] = "",
    port: Annotated[
        int | None,
        typer.Option("--port", help=f"Default: web.port in settings.toml ({WEB_DEFAULT_PORT})."),
    ] = None,
) -> None:
    """Run the subscribe/unsubscribe web app; put it behind https at mail.base_url."""
    import uvicorn

    from syndicate.web.app import create_app
    from syndicate.web.guard import h11_with_head_timeout

    rt = runtime_of(ctx)
    settings = rt.settings
    uvicorn.run(
        create_app(rt),
        host=host or settings.web.host,
        port=port or settings.web.port,
        # The app reads X-Forwarded-For itself, by hop count (web.trusted_proxies); uvicorn's
        # own handling would rewrite the client address before the app sees the real peer.
        proxy_headers=False,
        server_header=False,
        # No limit_concurrency: uvicorn counts idle connections there, so sockets that never
        # send a byte would shut everyone out. The app limits requests (web.max_requests), a
        # head must arrive within web.head_timeout_seconds, a body within body_timeout_seconds.
        http=h11_with_head_timeout(settings.web.head_timeout_seconds),
        timeout_keep_alive=5,
        log_level="info",
    )
