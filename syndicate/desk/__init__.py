"""The author's desk: the CLI's work in the browser, under `[desk] path` of `syndicate serve`.

One author account (`syndicate desk password`); every page goes through the gate in
`syndicate.desk.app`; every action calls the same function the CLI's command calls.
`static/htmx.min.js` is htmx.org 2.0.11 from npm, unchanged (served by the desk, never a CDN).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

if TYPE_CHECKING:
    from syndicate.runtime import Runtime

# The one desk path whose body may be larger than [web] max_body_bytes: [desk] max_upload_bytes.
UPLOAD_PATH = "/subscribers/import"


def routes(runtime: Runtime) -> list[BaseRoute]:
    """The desk's routes for the web app: its bare path redirects to the home page."""
    from syndicate.desk import corrections, home, people, posts, replies
    from syndicate.desk.app import Desk, build_router

    desk = Desk(runtime)
    router = build_router(
        desk,
        [*home.ROUTES, *corrections.ROUTES, *posts.ROUTES, *replies.ROUTES, *people.ROUTES],
    )

    async def to_home(request: Request) -> Response:
        return RedirectResponse(desk.url(), 308)

    return [Route(desk.path, to_home, methods=["GET"]), Mount(desk.path, app=router)]
