"""The HTTP port's request context, in one middleware for every route (server/api/context.py has the why):
the caller's X-Request-Id kept or one made, and answered; the request span from the caller's W3C
headers with the http.* attributes; the access-log line. GET /health is left alone (probes)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Middleware

from embedrank.model.errors import InvalidArgument
from embedrank.server import statuses
from embedrank.server.api.context import Observer, caller_request_id
from embedrank.server.api.status import REQUEST_ID_HEADER
from embedrank.server.engine import observe
from embedrank.server.http.errors import error_answer
from embedrank.server.http.serving import GRPC_CODE

if TYPE_CHECKING:
    from embedrank.server.api.tracing import Attributes

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UNOBSERVED = ("/health", "/ping", "/")  # probes: ours and TEI's


def _grpc_code(status: int) -> str:
    """The status table's gRPC code for an HTTP status we answer (the span's embedrank.error.code)."""
    if status < 400:
        return "OK"
    row = next((r for r in statuses.ROWS.values() if r.http == status), statuses.INTERNAL)
    return row.grpc if status != 404 else "NOT_FOUND"


def context_middleware(observer: Observer) -> Middleware:
    @web.middleware
    async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in UNOBSERVED:
            return await handler(request)
        start = time.monotonic_ns()
        try:
            request_id = caller_request_id(request.headers.get(REQUEST_ID_HEADER))
        except InvalidArgument as exc:
            answer = error_answer(exc, statuses.new_request_id())
            return web.json_response(answer.body, status=answer.status, headers=answer.headers)
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else request.path
        name = f"{request.method} {route}"
        attributes: Attributes = {
            "http.request.method": request.method, "http.route": route, "url.path": request.path,
            "url.scheme": request.scheme, "network.protocol.version": f"{request.version.major}.{request.version.minor}",
        }
        scope = observer.open(name, request.headers, request_id, dict(attributes))
        token = observe.current.set(scope)
        status = 500
        try:
            response = await handler(request)
            status = response.status
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = 499  # the caller hung up (nginx's convention); its span says so
            raise
        finally:
            observe.current.reset(token)
            code = "CANCELLED" if status == 499 else str(request.get(GRPC_CODE) or _grpc_code(status))
            observer.close(scope, start, route=name, code=code, status=status, message=f"HTTP {status}",
                           # semantic conventions: a 4xx is the caller's, not the server's (TEI answers a bug 424)
                           error=status >= 500 or code == "INTERNAL",
                           attributes={"http.response.status_code": status,
                                       **({"error.type": str(status)} if status >= 400 else {})})
        response.headers.setdefault("X-Request-Id", request_id)
        return response

    return request_context
