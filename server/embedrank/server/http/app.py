"""The HTTP port (--http-port): its socket, TLS, start/stop, and the route table assembled from
each convention's module.

Served by aiohttp on the gRPC server's own event loop, from the same Engine: one admission
bound, one bearer token, one TLS certificate, one set of metrics and one drain (``Calls``) for
both ports. The conventions, one module each over the same engine calls (http/serving.py is
what they share):

    openai.py                    POST /v1/embeddings, GET /v1/models[/{name}]
    tei.py                       TEI's: POST /embed, /rerank, /predict, /embed_sparse, ... (tei_bodies.py)
    (here, for now)              POST /v1/rerank, /v2/rerank: Cohere (v1, v2) and Jina
    hybrid.py                    POST /v1/hybrid (ours): a hybrid (BGE-M3) model's three outputs from one run
    GET  /health, /ping, /       200 {"status": "ok"}; 503 while loading or draining (no token needed)

Why aiohttp and orjson: docs/http.md (measured against starlette + uvicorn, and json).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from embedrank.model.errors import ConfigError, InvalidArgument
from embedrank.model.kinds import ModelKind
from embedrank.server.api.context import Observer
from embedrank.server.api.drain import Calls
from embedrank.server.api.tls import TlsFiles, read
from embedrank.server.engine.engine import Engine
from embedrank.server.engine.hybrid import HybridModel
from embedrank.server.http import hybrid, openai, schemas, tei
from embedrank.server.http.context import context_middleware
from embedrank.server.http.errors import RERANK_FIELDS
from embedrank.server.http.limits import DoorLimits, Doors
from embedrank.server.http.serving import RequestState, Route, Serving, json_response
from embedrank.server.tokens import BearerTokens

log = logging.getLogger(__name__)

# Seconds aiohttp waits for handlers when the listener closes; the drain (App.stop) has already
# waited for every call, so only answers on their way out are left.
_CLOSE_S = 2.0
_COHERE_ROUTES: tuple[Route, ...] = (
    ("POST", "/v1/rerank", "rerank_v1"),
    ("POST", "/v2/rerank", "rerank_v2"),
)
# /ping and GET /: TEI's names for the same check.
_OWN_ROUTES: tuple[Route, ...] = (("GET", "/health", "health"), ("GET", "/ping", "health"), ("GET", "/", "health"))
# Each convention: its routes and the class whose methods (by the routes' names) serve them.
_CONVENTIONS: tuple[tuple[tuple[Route, ...], Callable[[Serving], Any]], ...] = (
    (openai.ROUTES, openai.Handlers),
    (tei.ROUTES, tei.Handlers),
    (hybrid.ROUTES, hybrid.Handlers),
)
# (method, path, handler): what the port serves (the README check reads it too).
ROUTES: tuple[Route, ...] = (
    *(route for routes, _ in _CONVENTIONS for route in routes), *_COHERE_ROUTES, *_OWN_ROUTES,
)


def server_ssl_context(files: TlsFiles) -> ssl.SSLContext:
    """The TLS context of the HTTP port, from the files the gRPC port uses (checked by ``read``)."""
    read(files)  # ConfigError naming the flag, as for the gRPC port
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.cert, files.key)
    if files.client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=files.client_ca)
    context.set_alpn_protocols(["http/1.1"])
    return context


def listen(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A listening socket on host:port; a port in use is one line that names --http-port."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]") or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror:
        raise ConfigError(f"--http-port: cannot listen on {host}:{port}: the host name does not resolve; "
                          "choose another address with --host or EMBEDRANK_HOST") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:  # --processes: every server process listens on the same port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"--http-port {port}: cannot listen on {host}:{port} ({exc.strerror or exc}); choose another with "
            "--http-port or EMBEDRANK_HTTP_PORT (0 picks a free one, -1 turns HTTP off)"
        ) from None
    sock.setblocking(False)
    return sock


class HttpServer:
    """Built (its socket bound) with the gRPC server; started and stopped by App."""

    def __init__(
        self, engine: Engine, calls: Calls, *, host: str, port: int, reuse_port: bool, limits: DoorLimits,
        tokens: BearerTokens | None, tls_files: TlsFiles | None, observer: Observer | None = None,
    ) -> None:
        self._serving = Serving(engine, calls, tokens=tokens, max_body_mb=limits.max_body_mb)
        self._engine = engine
        self._calls = calls
        self._tls_files = tls_files
        self._ssl = server_ssl_context(tls_files) if tls_files is not None else None
        self._socket = listen(host, port, reuse_port=reuse_port)
        self.port: int = self._socket.getsockname()[1]
        self.scheme = "https" if self._ssl is not None else "http"
        # Timeouts, caps and the checks before a body is read (server/http/limits.py): every route is
        # registered with its middleware and its Expect handler (add routes only in the loops below).
        shapes = {path: handlers.ERROR_SHAPE for routes, handlers in _CONVENTIONS if hasattr(handlers, "ERROR_SHAPE")
                  for method, path, _ in routes if method == "POST"}
        self._doors = Doors(limits, calls=calls, admission=engine.admission, tokens=tokens, shapes=shapes)
        # The request's context (id, span, access log; http/context.py) around everything, the doors' refusals
        # and aiohttp's own answers included.
        context: list[Middleware] = [context_middleware(observer)] if observer is not None else []
        app = web.Application(client_max_size=limits.max_body_bytes,
                              middlewares=[*context, self._doors.middleware, _framework_errors])
        for routes, handlers in _CONVENTIONS:
            convention = handlers(self._serving)
            for method, path, name in routes:
                app.router.add_route(method, path, getattr(convention, name), expect_handler=self._doors.expect)
        for method, path, name in (*_COHERE_ROUTES, *_OWN_ROUTES):
            app.router.add_route(method, path, getattr(self, name), expect_handler=self._doors.expect)
        # A caller that hangs up cancels its handler: its queued inputs are dropped, as on gRPC.
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=_CLOSE_S,
                                     **self._doors.handler_kwargs())
        self._listener: asyncio.Server | None = None

    async def start(self) -> None:
        await self._runner.setup()
        assert self._runner.server is not None
        self._listener = await self._doors.listen(self._runner.server, self._socket, ssl=self._ssl)
        log.info("HTTP (OpenAI / Cohere conventions) on %s://%s:%d", self.scheme,
                 self._socket.getsockname()[0], self.port)

    async def close_listener(self) -> None:
        """No new connections (with the gRPC listener, when the drain's window ends); open ones are
        still answered, as gRPC answers the calls it has taken."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._doors.drain()  # connections opened in the window that hold no request

    def begin_drain(self) -> None:
        """SIGTERM: idle keep-alive connections and requests whose head or body has not arrived are
        closed (bodies in progress answered 503); requests being handled answer with Connection: close."""
        self._doors.drain()

    async def stop(self) -> None:
        """Close the listener and the idle connections; called once the drain has answered every call."""
        await self._runner.cleanup()
        self._socket.close()

    def reload_tls(self) -> None:
        """New connections get the certificate files as they are now (SIGHUP, rotated files)."""
        if self._ssl is None or self._tls_files is None:
            return
        try:
            read(self._tls_files)
            self._ssl.load_cert_chain(self._tls_files.cert, self._tls_files.key)
            if self._tls_files.client_ca is not None:
                # Adds the file's CAs: one removed from the file stays trusted here until a restart.
                self._ssl.load_verify_locations(cafile=self._tls_files.client_ca)
        except (ConfigError, OSError, ssl.SSLError) as exc:
            log.error("HTTP TLS reload refused, still serving the previous certificate: %s", exc)

    # -- Cohere / Jina rerank ------------------------------------------------------------------

    async def _rerank(self, request: web.Request, rid: str, api_version: str) -> dict[str, Any]:
        body = await self._serving.body(request)
        parsed = schemas.rerank_request(body)
        self._serving.check_kind(parsed.model, ModelKind.RERANK, ModelKind.HYBRID)
        model = self._engine.reranker(parsed.model)
        if parsed.params.hybrid_options and not isinstance(model, HybridModel):
            raise InvalidArgument(parsed.params.hybrid_options[0], f"is for hybrid (BGE-M3) models; {model.name} is "
                                  f"a {model.manifest.kind.value} model: leave it out")
        result = await model.rerank(parsed.params, deadline=None, request_id=rid)
        return schemas.rerank_response(result, api_version=api_version)

    async def rerank_v1(self, request: web.Request) -> web.Response:
        async def work(r: web.Request, rid: str, _: RequestState) -> dict[str, Any]:
            return await self._rerank(r, rid, "1")

        return await self._serving.serve(request, "HTTP /v1/rerank", work, RERANK_FIELDS)

    async def rerank_v2(self, request: web.Request) -> web.Response:
        async def work(r: web.Request, rid: str, _: RequestState) -> dict[str, Any]:
            return await self._rerank(r, rid, "2")

        return await self._serving.serve(request, "HTTP /v2/rerank", work, RERANK_FIELDS)

    async def health(self, _request: web.Request) -> web.Response:
        """Open (no token), not counted as a call: answers while draining, with 503."""
        if self._calls.stopping:  # from SIGTERM on, as gRPC health turns NOT_SERVING
            return json_response({"status": "draining"}, status=503)
        if not self._engine.ready:
            return json_response({"status": "loading"}, status=503)
        return json_response({"status": "ok"})


@web.middleware
async def _framework_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """aiohttp's own answers (no such route, wrong method) in the same error shape."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        kind = "not_found_error" if exc.status == 404 else "invalid_request_error"
        message = f"{request.method} {request.path}: {exc.reason}"
        if exc.status == 404:
            message += (" (routes: POST /v1/embeddings, POST /v1/rerank, POST /v2/rerank, POST /v1/hybrid, GET /v1/models, GET /health; "
                        "TEI's POST /embed, /rerank, /predict, /embed_sparse, /embed_all, /similarity, /tokenize, "
                        "/decode, GET /info, also under /models/<name>/)")
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return json_response({"error": {"message": message, "type": kind, "param": None, "code": "unimplemented"}},
                              status=exc.status, headers=headers)
