"""The exporter's HTTP surface: /metrics, /healthz, /readyz and a landing page."""

from __future__ import annotations

import html
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from exporter import __version__
from exporter.config import WebSettings
from exporter.http import auth as auth_check
from exporter.http import status
from exporter.http.page_parts import LOCAL_TIMES_HASH
from exporter.metrics.exposition import Exposition
from exporter.polling.snapshot import Snapshot, Store

CHUNK = 256 * 1024
LANDING = """<!doctype html>
<html><head><meta charset="utf-8"><title>Veeam failover exporter</title></head>
<body><h1>Veeam failover exporter {version}</h1>
<p>Enterprise Manager: {em}</p>
<ul>
<li><a href="metrics">/metrics</a> &mdash; Prometheus metrics</li>
<li><a href="status">/status</a> &mdash; failover status page</li>
<li><a href="healthz">/healthz</a> &mdash; the process is alive</li>
<li><a href="readyz">/readyz</a> &mdash; the first poll of EM has finished</li>
</ul></body></html>
"""


def create_app(
    store: Store,
    exposition: Exposition,
    *,
    em_url: str,
    lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]] | None = None,
    extra_routes: list[Route] | None = None,
    actions_view: Callable[[], status.ActionsView] | None = None,
    data_as_of: Callable[[], dict[str, float]] | None = None,
    web: WebSettings | None = None,
    shown: Callable[[Snapshot], Snapshot] = lambda snap: snap,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """`shown`: what of a snapshot the pages show (snapshot.as_shown, as the metrics do)."""

    async def landing(request: Request) -> Response:
        return HTMLResponse(LANDING.format(version=html.escape(__version__), em=html.escape(em_url)))

    async def metrics(request: Request) -> Response:
        accept = request.headers.get("accept", "")
        want_gzip = "gzip" in request.headers.get("accept-encoding", "")
        # The last rendering comes straight from memory; only a format's first scrape renders, off the loop.
        found = exposition.cached(accept, want_gzip)
        if found is None:
            found = await run_in_threadpool(exposition.render, accept, want_gzip)
        body, content_type = found
        headers = {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"} if want_gzip else {}
        if len(body) <= CHUNK:
            return Response(body, media_type=content_type, headers=headers)
        # Large bodies go out in slices of the shared bytes, each sent once the socket drained the last:
        # twenty scrapers of a 10 MB exposition then hold a few chunks each, not twenty copies.
        view = memoryview(body)
        headers["Content-Length"] = str(len(body))

        async def chunks() -> AsyncIterator[memoryview]:
            for i in range(0, len(view), CHUNK):
                yield view[i : i + CHUNK]

        return StreamingResponse(chunks(), media_type=content_type, headers=headers)

    async def status_page(request: Request) -> Response:
        snap = shown(store.current())
        actions = None if actions_view is None else actions_view()
        as_of = None if data_as_of is None else data_as_of()
        body = await run_in_threadpool(status.render, snap, actions, clock(), as_of)
        return HTMLResponse(
            body, headers={"Cache-Control": "no-store", "Content-Security-Policy": STATUS_CSP}
        )

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        if store.current().ready:
            return PlainTextResponse("ready\n")
        return PlainTextResponse("waiting for the first poll of EM\n", status_code=503)

    routes = [
        Route("/", landing, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/status", status_page, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    middleware = [Middleware(NoSniff)]
    if web is not None:
        middleware.append(Middleware(ListenerAuth, web=web))
    app = Starlette(routes=routes + (extra_routes or []), lifespan=lifespan, middleware=middleware)
    # `/metrics/` would be redirected to an absolute URL built from the request's Host header: an open
    # redirect to any host a client names. No such redirects: a path is right or it is a 404.
    app.router.redirect_slashes = False
    return app


# The status page needs its own inline style and one script (by its hash: times in the reader's zone), and
# nothing else: no other script, no frame, no form.
STATUS_CSP = (
    f"default-src 'none'; style-src 'unsafe-inline'; script-src '{LOCAL_TIMES_HASH}'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


class NoSniff:
    """`X-Content-Type-Options: nosniff` on every answer: a browser must not guess a type."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def send_with(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-content-type-options", b"nosniff")]
            await send(message)

        await self.app(scope, receive, send_with)


class ListenerAuth:
    """Basic or bearer auth on the listener, if configured. The probes stay open (kubelet sends no
    credentials) and the action endpoints keep their own, stronger, per-caller tokens."""

    OPEN = ("/healthz", "/readyz", "/api/v1/")

    def __init__(self, app: ASGIApp, web: WebSettings) -> None:
        self.app = app
        self.web = web

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(self.OPEN):
            auth = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None)
            if not auth_check.allows(self.web, auth):
                response = PlainTextResponse(
                    "unauthorized\n",
                    status_code=401,
                    headers={"WWW-Authenticate": auth_check.challenge(self.web)},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
