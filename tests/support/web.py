"""The web app served by uvicorn on 127.0.0.1 in a thread, exactly as `syndicate serve` runs it."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from tests.support.smtp import free_port
from tests.support.waiting import wait_until


@contextmanager
def serving(app: Any, port: int | None = None) -> Iterator[str]:
    """The app on `port` (by default a free one) for the length of the block; yields its base
    URL. Pass a port from free_port() when the app's settings must name its URL beforehand."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout=10, what="uvicorn to start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A request handler that keeps its access log off the test's stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serving_http(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threading HTTP server with this handler on a free port for the length of the block;
    yields its base URL (no trailing slash)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
