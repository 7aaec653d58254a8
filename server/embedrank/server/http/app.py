"""The HTTP conventions on --http-port: OpenAI embeddings, Cohere/Jina rerank, models, health.

Served by aiohttp on the gRPC server's own event loop, from the same Engine: one admission
bound, one bearer token, one TLS certificate, one set of metrics and one drain (``Calls``) for
both ports. Routes:

    POST /v1/embeddings          OpenAI: {input, model, encoding_format, dimensions, user}
    POST /v1/embed, /v2/embed    Cohere (v1, v2): {texts, model, input_type, embedding_types, ...}   (cohere.py)
    POST /v1/rerank, /v2/rerank  Cohere (v1, v2) and Jina: {query, documents, top_n, return_documents} (cohere.py)
    GET  /v1/models[/{name}]     OpenAI: {object: "list", data: [{id, object: "model", ...}]}
    GET  /health                 200 {"status": "ok"}; 503 while loading or draining (no token needed)

Why aiohttp and orjson: docs/http.md (measured against starlette + uvicorn, and json).
"""

from __future__ import annotations

import datetime
import hmac
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from embedrank.server import metrics
from embedrank.server.api.drain import Calls
from embedrank.server.api.tls import TlsFiles, read
from embedrank.server.engine.engine import Engine
from embedrank.server.engine.served import ServedModel
from embedrank.model.errors import (
    ConfigError, InvalidArgument, MessageTooLarge, Unauthenticated, Unavailable,
)
from embedrank.server.http import cohere, schemas
from embedrank.server.http.errors import EMBEDDINGS_FIELDS, error_answer
from embedrank.server.http.routes import ErrorBody, PostRoute, check_kind
from embedrank.model.kinds import ModelKind
from embedrank.server.statuses import new_request_id

log = logging.getLogger(__name__)

_JSON = "application/json"
_DUMPS_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
# Seconds aiohttp waits for handlers when the listener closes; the drain (App.stop) has already
# waited for every call, so only answers on their way out are left.
_CLOSE_S = 2.0
# (method, path, handler): what the port serves (the README check reads it too).
# The conventions' modules hand their POST routes over (routes.PostRoute); the rest are methods here.
POST_ROUTES: tuple[PostRoute, ...] = cohere.ROUTES
ROUTES = (
    ("POST", "/v1/embeddings", "embeddings"),
    *(("POST", r.path, r.name) for r in POST_ROUTES),
    ("GET", "/v1/models", "models"),
    ("GET", "/v1/models/{name}", "model"),
    ("GET", "/health", "health"),
)
_ROUTE_FOR_KIND = {ModelKind.EMBEDDING: "POST /v1/embeddings", ModelKind.RERANK: "POST /v1/rerank",
                   ModelKind.MULTI_VECTOR: "POST /v1/rerank"}


class _Request:
    """What one request's error answer needs to know about it."""

    __slots__ = ("renames", "scalar_input")

    def __init__(self, renames: dict[str, str]) -> None:
        self.renames = renames
        self.scalar_input = False


Work = Callable[[web.Request, str, _Request], Awaitable[dict[str, Any]]]


def _json_response(payload: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(payload, option=_DUMPS_OPTIONS), status=status, headers=headers,
                        content_type=_JSON)


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
        self, engine: Engine, calls: Calls, *, host: str, port: int, reuse_port: bool, max_body_mb: int,
        token: str | None, tls_files: TlsFiles | None,
    ) -> None:
        self._engine = engine
        self._calls = calls
        self._expected = f"Bearer {token}".encode() if token else None
        self._max_mb = max_body_mb
        self._tls_files = tls_files
        self._ssl = server_ssl_context(tls_files) if tls_files is not None else None
        self._socket = listen(host, port, reuse_port=reuse_port)
        self.port: int = self._socket.getsockname()[1]
        self.scheme = "https" if self._ssl is not None else "http"
        app = web.Application(client_max_size=max_body_mb * 1024 * 1024, middlewares=[_framework_errors])
        posted = {r.name: r for r in POST_ROUTES}
        for method, path, name in ROUTES:
            route = posted.get(name)
            app.router.add_route(method, path, getattr(self, name) if route is None else self._post(route))
        # A caller that hangs up cancels its handler: its queued inputs are dropped, as on gRPC.
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=_CLOSE_S)
        self._site: web.SockSite | None = None

    async def start(self) -> None:
        await self._runner.setup()
        self._site = web.SockSite(self._runner, self._socket, ssl_context=self._ssl, shutdown_timeout=_CLOSE_S)
        await self._site.start()
        log.info("HTTP (OpenAI / Cohere conventions) on %s://%s:%d", self.scheme,
                 self._socket.getsockname()[0], self.port)

    async def close_listener(self) -> None:
        """No new connections (with the gRPC listener, when the drain's window ends); open ones are
        still answered, as gRPC answers the calls it has taken."""
        if self._site is not None:
            await self._site.stop()
            self._site = None

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

    # -- one request, any route ------------------------------------------------------------------

    async def _serve(
        self, request: web.Request, rpc: str, work: Work, renames: dict[str, str] | None = None,
        error_body: ErrorBody | None = None,
    ) -> web.Response:
        rid = new_request_id()
        start = time.monotonic()
        state = _Request(renames or {})
        try:
            self._check_token(request)
            with self._calls.track():
                payload = await work(request, rid, state)
        except Exception as exc:  # every exception gets an answer from the table; unexpected ones are logged
            answer = error_answer(exc, rid, renames=state.renames, scalar_input=state.scalar_input)
            metrics.REQUESTS.labels(rpc, answer.grpc_code).inc()
            body = answer.body if error_body is None else error_body(answer)
            response = _json_response(body, status=answer.status, headers=answer.headers)
            if answer.status == 401:
                response.headers["WWW-Authenticate"] = "Bearer"
        else:
            metrics.REQUESTS.labels(rpc, "OK").inc()
            metrics.REQUEST_SECONDS.labels(rpc).observe(time.monotonic() - start)
            response = _json_response(payload, headers={"X-Request-Id": rid})
        if self._calls.draining:
            response.force_close()  # no keep-alive: the caller's next request goes elsewhere
        return response

    def _check_token(self, request: web.Request) -> None:
        if self._expected is None:
            return
        sent = request.headers.get("Authorization", "")
        if not hmac.compare_digest(sent.encode("utf-8", "replace"), self._expected):
            raise Unauthenticated(
                "missing or wrong bearer token (header Authorization: Bearer <token>)" if sent
                else "this server needs a bearer token (header Authorization: Bearer <token>)"
            )

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise MessageTooLarge(
                f"request body over {self._max_mb} MiB (--max-message-mb); send fewer or shorter inputs per request"
            ) from None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidArgument("body", f"is not valid JSON ({exc})") from None
        return schemas.body_object(data)

    # -- routes ------------------------------------------------------------------------------------

    async def embeddings(self, request: web.Request) -> web.Response:
        async def work(req: web.Request, rid: str, state: _Request) -> dict[str, Any]:
            body = await self._body(req)
            parsed = schemas.embeddings_request(body)
            state.scalar_input = parsed.scalar_input
            check_kind(self._engine, parsed.model, (ModelKind.EMBEDDING,), _ROUTE_FOR_KIND)
            model = self._engine.embedding(parsed.model)
            result = await model.encode(parsed.params, deadline=None, request_id=rid)
            return schemas.embeddings_response(result, encoding_format=parsed.encoding_format)

        return await self._serve(request, "HTTP /v1/embeddings", work, EMBEDDINGS_FIELDS)

    def _post(self, route: PostRoute) -> Callable[[web.Request], Awaitable[web.Response]]:
        """The handler of a convention's POST route: its work on the parsed body, its error shape."""

        async def work(req: web.Request, rid: str, _state: _Request) -> dict[str, Any]:
            return await route.work(self._engine, await self._body(req), rid)

        async def handler(request: web.Request) -> web.Response:
            return await self._serve(request, f"HTTP {route.path}", work, dict(route.renames), route.error_body)

        return handler

    async def models(self, request: web.Request) -> web.Response:
        async def work(_req: web.Request, _rid: str, _state: _Request) -> dict[str, Any]:
            if not self._engine.ready:
                raise Unavailable("models are loading; retry shortly")
            return {"object": "list", "data": [_model_entry(m) for _, m in sorted(self._engine.models.items())]}

        return await self._serve(request, "HTTP /v1/models", work)

    async def model(self, request: web.Request) -> web.Response:
        async def work(req: web.Request, _rid: str, _state: _Request) -> dict[str, Any]:
            return _model_entry(self._engine.get(req.match_info["name"]))

        return await self._serve(request, "HTTP /v1/models/{name}", work)

    async def health(self, _request: web.Request) -> web.Response:
        """Open (no token), not counted as a call: answers while draining, with 503."""
        if self._calls.stopping:  # from SIGTERM on, as gRPC health turns NOT_SERVING
            return _json_response({"status": "draining"}, status=503)
        if not self._engine.ready:
            return _json_response({"status": "loading"}, status=503)
        return _json_response({"status": "ok"})


def _model_entry(model: ServedModel) -> dict[str, Any]:
    m = model.manifest
    entry: dict[str, Any] = {
        "id": m.name, "object": "model", "created": _created(m.raw.get("created")), "owned_by": "embedrank",
        "kind": m.kind.value, "version": m.version, "max_tokens": m.tokenizer.max_tokens,
    }
    dimensions = getattr(m.spec, "dimensions", None)  # the vector kinds' section has it
    if dimensions is not None:
        entry["dimensions"] = dimensions
    return entry


def _created(value: Any) -> int:
    """The export time (ISO 8601 in the manifest) as OpenAI's Unix seconds; 0 when unknown."""
    try:
        return int(datetime.datetime.fromisoformat(str(value)).timestamp())
    except ValueError:
        return 0


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
            message += f" (routes: {', '.join(f'{m} {p}' for m, p, _ in ROUTES)})"
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return _json_response({"error": {"message": message, "type": kind, "param": None, "code": "unimplemented"}},
                              status=exc.status, headers=headers)
