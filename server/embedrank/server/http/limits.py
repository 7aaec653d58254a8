"""The doors of the HTTP port: what a slow, idle or hostile client may hold, and what is refused
before any work (issue 32). docs/deploy.md has the table of every timeout and cap.

aiohttp gives an idle keep-alive timeout and header size caps, but no timeout on a request's head or
body, no cap on connections, no JSON for its own protocol errors and no check before it answers
``Expect: 100-continue``. So its connection protocol (``RequestHandler``) is subclassed here, and
the rest is one middleware and one expect handler that every route gets (``HttpServer`` registers
its routes with them):

- **Head timeout** (``--head-timeout-s``): from a request's first byte, its line and headers must
  all arrive in time (nginx ``client_header_timeout``, Go ``ReadHeaderTimeout``), else 408 (JSON)
  and the connection is closed: slowloris holds a socket for seconds, not forever.
- **Body timeout** (``--body-timeout-s``): a body that makes no progress for that long is dropped
  with 408 (nginx ``client_body_timeout``: between two reads, not for the whole body, so a large
  upload on a slow link still gets through).
- **Idle timeout** (``--idle-timeout-s``): aiohttp's keep-alive timeout, which also closes a
  connection that never sends a byte.
- **Connection cap** (``--max-connections``): past it a new connection is answered 503 (JSON,
  ``Connection: close``) and closed at once, as nginx ``limit_conn`` answers 503.
- **Before the body is read**, in this order: the bearer token (401: a body is never read for a
  caller without one), ``Content-Type: application/json`` (415, TEI/axum's ``Json`` answers the
  same), a declared length over ``--max-message-mb`` (413, also instead of ``100 Continue``), and
  admission: when not one more input fits under ``--max-inflight-inputs`` the request is refused
  (429) unread; otherwise ``ServedModel.run`` admits its inputs before tokenizing.
- **The body is read here**, before the route's handler runs, so that a request whose body has
  not arrived is not work the drain waits for (``Calls`` counts handlers): at the drain's start
  (``drain``) idle connections and heads in progress are closed, and bodies in progress are
  answered 503; from SIGTERM on every response carries ``Connection: close``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from embedrank.model.errors import (
    EmbedRankError, InvalidArgument, MessageTooLarge, RequestTimeout, ResourceExhausted, Unauthenticated,
    Unavailable, UnsupportedMediaType,
)
from embedrank.server import metrics
from embedrank.server.api.drain import SHUTTING_DOWN, Calls
from embedrank.server.api.status import request_id
from embedrank.server.engine.served import Admission
from embedrank.server.http.errors import Answer, error_answer
from embedrank.server.http.serving import GRPC_CODE, RequestState, Shape, json_response, openai_error
from embedrank.server.statuses import new_request_id
from embedrank.server.tokens import BearerTokens

log = logging.getLogger(__name__)

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# "never" for aiohttp's keep-alive timer (0 there would close after every request).
_NEVER_S = 10.0**9


@dataclasses.dataclass(frozen=True)
class DoorLimits:
    head_timeout_s: float  # 0 = none
    body_timeout_s: float  # 0 = none
    idle_timeout_s: float  # 0 = never
    max_connections: int  # 0 = no cap
    max_body_bytes: int
    max_body_mb: int


def _body(answer: Answer) -> bytes:
    return orjson.dumps(answer.body)


def answer_response(answer: Answer, *, close: bool = False) -> web.Response:
    response = json_response(answer.body, status=answer.status, headers=answer.headers)
    if answer.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    if close:
        response.force_close()
    return response


def _raw_response(answer: Answer) -> bytes:
    """A whole HTTP/1.1 response, for a connection no request handler answers (cap, head timeout)."""
    body = _body(answer)
    reason = {408: "Request Timeout", 503: "Service Unavailable"}.get(answer.status, "Error")
    lines = [f"HTTP/1.1 {answer.status} {reason}", "Content-Type: application/json",
             f"Content-Length: {len(body)}", "Connection: close",
             *(f"{k}: {v}" for k, v in answer.headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return f"HTTP {resource.canonical if resource is not None else request.path}"


class Guard(RequestHandler):
    """aiohttp's connection protocol, with the head and body timeouts, the connection cap and
    protocol errors answered in the JSON error shape."""

    def __init__(self, manager: web.Server, *, doors: Doors, loop: asyncio.AbstractEventLoop, **kwargs: Any) -> None:
        super().__init__(manager, loop=loop, **kwargs)
        self._doors = doors
        self._clock = loop
        self._refused = False
        self._head_since: float | None = None  # first byte of a request whose head has not been parsed
        self._last_data = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self.request: web.BaseRequest | None = None  # the request being handled (the middleware sets it)
        self.reading = False  # its body is being read
        # The body of the last request, when it was answered before its body was read (a refusal):
        # bytes that still arrive for it are that body (aiohttp drops them), not a new request's head.
        self._unread: Any = None

    # -- asyncio.Protocol --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._doors.admit(self):
            self._refused = True
            answer = error_answer(Unavailable(
                f"too many open connections (--max-connections {self._doors.limits.max_connections}); "
                "retry shortly or on another replica"), new_request_id())
            answer.headers["Retry-After"] = "1"
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(_raw_response(answer))
            transport.close()
            return
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_timer()
        if self._refused:
            return
        self._doors.forget(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        now = self._clock.time()
        self._last_data = now
        if self._unread is not None and self._unread.is_eof():
            self._unread = None
        if data and self.request is None and self._head_since is None and self._unread is None:
            self._head_since = now
            self._arm(self._doors.limits.head_timeout_s, now + self._doors.limits.head_timeout_s)
        super().data_received(data)

    # -- the timers --------------------------------------------------------------------------------

    def _arm(self, limit: float, at: float) -> None:
        if limit > 0:
            self._cancel_timer()
            self._timer = self._clock.call_at(at, self._tick)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        self._timer = None
        now = self._clock.time()
        limits = self._doors.limits
        if self.request is None and self._head_since is not None:
            if now < self._head_since + limits.head_timeout_s:
                self._arm(limits.head_timeout_s, self._head_since + limits.head_timeout_s)
                return
            metrics.REQUESTS.labels("HTTP (request head)", "CANCELLED").inc()
            self.abort_head(RequestTimeout(
                f"request head not received within {limits.head_timeout_s:g}s of its first byte (--head-timeout-s)"))
        elif self.request is not None and self.reading:
            if now < self._last_data + limits.body_timeout_s:
                self._arm(limits.body_timeout_s, self._last_data + limits.body_timeout_s)
                return
            self.abort_body(RequestTimeout(
                f"request body: nothing received for {limits.body_timeout_s:g}s (--body-timeout-s)"))

    # -- states, set by the middleware -------------------------------------------------------------

    def started(self, request: web.BaseRequest) -> None:
        self.request = request
        self._head_since = None
        self._cancel_timer()

    def start_reading(self) -> None:
        self.reading = True
        self._arm(self._doors.limits.body_timeout_s, self._clock.time() + self._doors.limits.body_timeout_s)

    def done_reading(self) -> None:
        self.reading = False
        self._cancel_timer()

    def finished(self) -> None:
        if self.request is not None and not self.request.content.is_eof():
            self._unread = self.request.content
        self.request = None
        self.reading = False
        self._cancel_timer()

    def abort_head(self, exc: EmbedRankError) -> None:
        """Answer a connection that has no request handler (idle or in its head) and close it."""
        if self.transport is not None and self._head_since is not None:
            self.transport.write(_raw_response(error_answer(exc, new_request_id())))
        self.force_close()

    def abort_body(self, exc: EmbedRankError) -> None:
        """The body being read fails with ``exc``: the middleware answers it, then the connection closes."""
        if self.request is not None:
            self.request.content.set_exception(exc)

    # -- aiohttp's own answers ---------------------------------------------------------------------

    def handle_error(self, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """A request aiohttp could not parse (bad request line, oversized or too many headers,
        bad Content-Length, Content-Length with chunked), or a handler's crash: the JSON error shape."""
        if status >= 500:
            super().handle_error(request, status, exc, message)  # a bug: aiohttp logs its traceback
            return answer_response(error_answer(RuntimeError(message or "handler failed"), new_request_id()), close=True)
        if request.writer is not None and request.writer.output_size > 0:
            raise ConnectionError("a response was started; cannot answer the error")  # as aiohttp does
        # A client's mistake (or a scanner's garbage): one line, not a traceback per request.
        log.info("malformed HTTP request from %s: %s", request.remote, (message or str(exc)).splitlines()[0])
        first = (message or str(status)).splitlines()[0].rstrip(":")
        answer = error_answer(InvalidArgument("request", f"malformed HTTP request ({first})"),
                              new_request_id())
        answer.status = status
        return answer_response(answer, close=True)

    def log_exception(self, *args: Any, **kw: Any) -> None:
        # Lingering after an answered abort re-raises the abort (our own error): not a failure.
        if not isinstance(kw.get("exc_info"), EmbedRankError):
            super().log_exception(*args, **kw)


class Doors:
    """Every connection of the HTTP port, and the checks before a request's handler runs."""

    def __init__(self, limits: DoorLimits, *, calls: Calls, admission: Admission, tokens: BearerTokens | None,
                 shapes: Mapping[str, Shape] | None = None) -> None:
        self.limits = limits
        # A route's path -> its convention's error shape, for the refusals made here (OpenAI's by default).
        self._shapes = dict(shapes or {})
        self._calls = calls
        self._admission = admission
        self._tokens = tokens
        self._open: set[Guard] = set()

    # -- connections -------------------------------------------------------------------------------

    def handler_kwargs(self) -> dict[str, Any]:
        """aiohttp's own connection settings."""
        return {"keepalive_timeout": self.limits.idle_timeout_s or _NEVER_S, "access_log": None,
                "lingering_time": min(10.0, self.limits.body_timeout_s or 10.0)}

    def protocol_factory(self, server: web.Server) -> Callable[[], Guard]:
        loop = asyncio.get_running_loop()
        kwargs = self.handler_kwargs()
        return lambda: Guard(server, doors=self, loop=loop, **kwargs)

    async def listen(self, server: web.Server, sock: Any, *, ssl: Any) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        handshake = self.limits.head_timeout_s if ssl is not None and self.limits.head_timeout_s > 0 else None
        return await loop.create_server(self.protocol_factory(server), sock=sock, ssl=ssl,
                                        ssl_handshake_timeout=handshake)

    def admit(self, guard: Guard) -> bool:
        if self.limits.max_connections and len(self._open) >= self.limits.max_connections:
            return False
        self._open.add(guard)
        return True

    def forget(self, guard: Guard) -> None:
        self._open.discard(guard)

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def drain(self) -> None:
        """The drain began (or its listener closed): close what is not a request the handlers have
        taken. Idle keep-alive connections and heads in progress are closed; bodies in progress are
        answered 503. Requests being handled keep going and answer with ``Connection: close``."""
        for guard in list(self._open):
            if guard.request is None:
                guard.abort_head(Unavailable(SHUTTING_DOWN))
            elif guard.reading:
                guard.abort_body(Unavailable(SHUTTING_DOWN))

    # -- every request -----------------------------------------------------------------------------

    def _before_body(self, request: web.Request) -> None:
        """What is refused before a byte of the body is read (and before ``100 Continue``)."""
        if self._tokens is not None:
            self._tokens.check(request.headers.get("Authorization", ""), where="header Authorization")
        kind = request.headers.get("Content-Type", "")
        media, _, params = kind.partition(";")
        charset = params.strip().lower().replace(" ", "")
        if media.strip().lower() != "application/json" or charset not in ("", "charset=utf-8", 'charset="utf-8"'):
            raise UnsupportedMediaType(
                f"send the body as JSON with Content-Type: application/json (got {kind!r})" if kind
                else "send the body as JSON with Content-Type: application/json (none was sent)")
        declared = request.content_length
        if declared is not None and declared > self.limits.max_body_bytes:
            raise MessageTooLarge(self._too_large())
        if self._admission.in_flight + 1 > self._admission.max_inputs:  # not one more input fits
            raise ResourceExhausted(
                f"server busy: {self._admission.in_flight} inputs in flight, limit "
                f"{self._admission.max_inputs}; retry with backoff")

    def _too_large(self) -> str:
        return (f"request body over {self.limits.max_body_mb} MiB (--max-message-mb); "
                "send fewer or shorter inputs per request")

    async def expect(self, request: web.Request) -> web.StreamResponse | None:
        """``Expect: 100-continue``: the checks first; ``100 Continue`` only for a body we will read."""
        if isinstance(request.protocol, Guard):
            request.protocol.started(request)  # the head has arrived (the middleware may not run)
        if request.method in _BODY_METHODS:
            try:
                self._before_body(request)
            except EmbedRankError as exc:  # the client waits for 100 before its body: none will come
                return self._refuse(request, exc, close=True)
        if request.headers.get("Expect", "").lower() != "100-continue":
            answer = error_answer(InvalidArgument("Expect", f"unknown expectation {request.headers['Expect']!r}"),
                                  request_id())
            answer.status = 417
            return answer_response(answer, close=True)
        if request.version >= (1, 1):
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return None

    def _refuse(self, request: web.Request, exc: EmbedRankError, *, close: bool) -> web.Response:
        resource = request.match_info.route.resource
        shape = self._shapes.get(resource.canonical, openai_error) if resource is not None else openai_error
        answer = shape(exc, request_id(), RequestState({}))
        request[GRPC_CODE] = answer.grpc_code
        metrics.REQUESTS.labels(_route_name(request), answer.grpc_code).inc()
        return answer_response(answer, close=close)

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        guard = request.protocol if isinstance(request.protocol, Guard) else None
        if guard is not None:
            guard.started(request)
        try:
            response = await self._admit(request, handler, guard)
        finally:
            if guard is not None:
                guard.finished()
        if self._calls.stopping:  # draining: the caller's next request goes to another replica
            response.force_close()
        return response

    async def _admit(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        guard: Guard | None,
    ) -> web.StreamResponse:
        if request.method in _BODY_METHODS and request.match_info.http_exception is None:
            try:
                self._before_body(request)
                if guard is not None:
                    guard.start_reading()
                try:
                    await request.read()
                except web.HTTPRequestEntityTooLarge:
                    raise MessageTooLarge(self._too_large()) from None
                finally:
                    if guard is not None:
                        guard.done_reading()
            except EmbedRankError as exc:
                # A refusal from the head alone (401, 415, 429) keeps the connection: aiohttp reads and
                # drops the rest of the body (lingering, at most --body-timeout-s or 10 s) and closes
                # only if it does not come. Closing would make the client's next request reconnect,
                # behind whatever the event loop is doing then (measured: 429 p50 0.7 s instead of ms).
                # A body too large, too slow or cut by the drain closes.
                return self._refuse(request, exc, close=not isinstance(exc, (Unauthenticated, UnsupportedMediaType,
                                                                             ResourceExhausted))
                                    or isinstance(exc, MessageTooLarge))
        return await handler(request)
