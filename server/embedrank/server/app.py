"""Building, starting and stopping the gRPC server."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from embedrank.server.api.auth import BearerTokenInterceptor
from embedrank.server.api.context import ContextInterceptor, Observer
from embedrank.server.api.limits import grpc_limits
from embedrank.server.api.drain import CLOSE_S, DRAIN_NOTICE_S, Calls
from embedrank.server.api.health import HealthServicer
from embedrank.server.api.hybrid import HybridEmbedServicer
from embedrank.server.api.malformed import Registrar
from embedrank.server.api.classify import ClassifyServicer
from embedrank.server.api.embed import EmbedServicer
from embedrank.server.api.models import ModelsServicer
from embedrank.server.api.multivector import MultiVectorEmbedServicer
from embedrank.server.api.rerank import RerankServicer
from embedrank.server.api.rpc import Rpcs
from embedrank.server.api.sparse import SparseEmbedServicer
from embedrank.server.api.tei import SERVICES as TEI_SERVICES
from embedrank.server.api.tei import add_tei_services
from embedrank.server.api.tls import ServerCertificates, TlsFiles
from embedrank.server.api.tokenize import TokenizeServicer
from embedrank.server.config import ServerConfig
from embedrank.server.engine import observe
from embedrank.server.engine.engine import Engine
from embedrank.server.engine.reload import ModelWatcher
from embedrank.server.logformat import json_line
from embedrank.server.tokens import BearerTokens
from embedrank.model.errors import ConfigError
from embedrank.v1 import (
    classify_pb2, classify_pb2_grpc, embed_pb2, embed_pb2_grpc, models_pb2, models_pb2_grpc, multivector_pb2,
    multivector_pb2_grpc, rerank_pb2, rerank_pb2_grpc, sparse_pb2, sparse_pb2_grpc, tokenize_pb2, tokenize_pb2_grpc,
)
from embedrank.v1 import hybrid_pb2, hybrid_pb2_grpc

if TYPE_CHECKING:
    from embedrank.server.api.tracing import Tracing
    from embedrank.server.http.app import HttpServer

log = logging.getLogger(__name__)

# Work the server awaits after it answers (health NOT_SERVING) and before it loads the repository.
Prepare = Callable[[], Awaitable[None]]

SERVICES = (
    embed_pb2.DESCRIPTOR.services_by_name["Embed"].full_name,
    rerank_pb2.DESCRIPTOR.services_by_name["Rerank"].full_name,
    models_pb2.DESCRIPTOR.services_by_name["Models"].full_name,
    tokenize_pb2.DESCRIPTOR.services_by_name["Tokenize"].full_name,
    classify_pb2.DESCRIPTOR.services_by_name["Classify"].full_name,
    sparse_pb2.DESCRIPTOR.services_by_name["SparseEmbed"].full_name,
    multivector_pb2.DESCRIPTOR.services_by_name["MultiVectorEmbed"].full_name,
    hybrid_pb2.DESCRIPTOR.services_by_name["HybridEmbed"].full_name,
    *TEI_SERVICES,  # TEI's gRPC API (tei.v1), for TEI's clients
)


class App:
    """A built server: bound to its port, not yet started, models not yet loaded."""

    def __init__(
        self, config: ServerConfig, server: grpc.aio.Server, port: int, engine: Engine,
        certificates: ServerCertificates | None = None, tokens: BearerTokens | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.config = config
        self.tracing = tracing  # --otlp-endpoint
        self.server = server
        self.port = port
        self.engine = engine
        self.certificates = certificates
        self.tokens = tokens  # --auth-token-file, re-read with the TLS files
        self.watcher: ModelWatcher | None = None  # set once the models are loaded (serve)
        self.health = HealthServicer()
        self.calls = Calls()
        self.loading = False  # start() is past ``prepare``
        self.http: HttpServer | None = None  # --http-port: the HTTP conventions (server/http/)

    async def start(self, prepare: Prepare | None = None) -> None:
        """Start answering (health NOT_SERVING), run ``prepare`` (the command line's: put the models
        it was given into the repository), load and warm every model, then SERVING."""
        for name in ("", *SERVICES):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        observe.install(self.tracing)  # None: tracing off
        await self.server.start()
        if self.http is not None:
            await self.http.start()
        log.info("settings: %s", ", ".join(f"{k}={v}" for k, v in self.config.effective().items()))
        if prepare is not None:
            await prepare()
        self.loading = True  # from here a signal waits for the load, then drains as usual
        await self.engine.load()
        for name in ("", *SERVICES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("serving %d model(s) on port %d", len(self.engine.models), self.port)

    def reload(self) -> None:
        """SIGHUP: re-read the TLS files (new connections get them; open ones keep theirs) and the
        token file (the next call is checked against it), and scan the model repository for new,
        broken or removed versions."""
        log.info("SIGHUP: reloading")
        if self.tokens is not None:
            self.tokens.reload()
        if self.certificates is not None:
            self.certificates.reload()
            if self.http is not None:
                self.http.reload_tls()
        if self.watcher is not None:
            self.watcher.wake()

    def reload_files_if_changed(self) -> None:
        """Every --model-poll-s: the token file and the TLS files, when they changed (a rotated Secret)."""
        if self.tokens is not None:
            self.tokens.reload_if_changed()
        if self.certificates is not None and self.certificates.reload_if_changed() and self.http is not None:
            self.http.reload_tls()

    async def stop(self, grace: float | None = None) -> None:
        """Drain (server/api/drain.py has the why): health NOT_SERVING; every call that arrives is
        served until none has for a moment (at least DRAIN_NOTICE_S); then the listener closes
        (GOAWAY) and the calls taken are answered if they can be within ``grace`` seconds of the
        signal; what cannot is answered UNAVAILABLE (retryable), never CANCELLED. Returns as soon
        as the work is done, not after the whole grace."""
        grace = self.config.shutdown_grace_s if grace is None else grace
        start = time.monotonic()
        deadline = start + grace
        await self.health.enter_graceful_shutdown()
        calls = self.calls
        calls.stopping = True
        if self.http is not None:  # idle and half-sent HTTP requests hold nothing (gRPC: core's own)
            self.http.begin_drain()
        settled = await calls.wait_settled(not_before=start + min(grace, DRAIN_NOTICE_S), until=deadline)
        closing: asyncio.Future[None] | None = None
        if settled:  # grpc holds no call that a handler has not taken: closing cancels none
            # Closes the listener now; its grace is only a backstop: the stop(CLOSE_S) below ends it.
            closing = asyncio.ensure_future(self.server.stop(max(deadline - time.monotonic(), 0.0) + 60.0))
            if self.http is not None:
                await self.http.close_listener()
            log.info("shutdown: listener closed after %.2fs; answering %d call(s) or stream item(s), %d stream(s) open",
                     time.monotonic() - start, calls.working, calls.streams)
        done = settled and await calls.wait_done(until=deadline)
        calls.start_drain()  # refuse new calls; open streams end UNAVAILABLE after their answered items
        if not settled:
            log.warning("shutdown: calls kept arriving for the whole grace (%.1fs); refusing new ones, answering "
                        "those still running UNAVAILABLE", grace)
        elif not done:
            log.warning("shutdown: %d call(s) still running after %.1fs; answering them UNAVAILABLE",
                        calls.working, grace)
        await self.engine.close()  # fails whatever is still queued with Unavailable
        await calls.wait_idle(until=time.monotonic() + CLOSE_S)  # those handlers answer
        self.health.end_watches()
        if closing is None:  # calls kept arriving for the whole grace: refused since, now closed
            log.info("shutdown: listener closing after %.2fs", time.monotonic() - start)
        if self.http is not None:  # its listener, then its connections (every HTTP call is answered)
            await self.http.stop()
        # Every Embed and Rerank call is answered: what is left (answers on their way out, another
        # service's stream) gets CLOSE_S, then grpc cancels it.
        await self.server.stop(CLOSE_S)
        if closing is not None:
            await closing
        if self.tracing is not None:  # the spans still queued: sent within the exporter's timeout, or dropped
            observe.install(None)
            await asyncio.get_running_loop().run_in_executor(None, self.tracing.shutdown)
        log.info("shutdown: done after %.2fs", time.monotonic() - start)


def build_server(config: ServerConfig) -> App:
    max_bytes = config.max_message_mb * 1024 * 1024
    tokens = BearerTokens(Path(config.auth_token_file)) if config.auth_token_file else None
    tls_files = TlsFiles.from_flags(config.tls_cert, config.tls_key, config.tls_client_ca)
    certificates = ServerCertificates(tls_files) if tls_files is not None else None  # checked before binding
    options: list[tuple[str, int]] = [
        ("grpc.max_receive_message_length", max_bytes),
        ("grpc.max_send_message_length", max_bytes),
        ("grpc.so_reuseport", 1 if config.processes > 1 else 0),
    ]
    options += grpc_limits(
        head_timeout_s=config.head_timeout_s, idle_timeout_s=config.idle_timeout_s,
        max_connections=config.max_connections, max_concurrent_streams=config.grpc_max_concurrent_streams,
        min_ping_interval_s=config.grpc_min_ping_interval_s,
    )
    if config.max_connection_age_s > 0:
        # GOAWAY after the age (grpc adds +-10% jitter, so replicas' clients do not reconnect in
        # step); calls in flight then get the shutdown grace to finish on the old connection.
        options += [
            ("grpc.max_connection_age_ms", int(config.max_connection_age_s * 1000)),
            ("grpc.max_connection_age_grace_ms", int(max(config.shutdown_grace_s, 1.0) * 1000)),
        ]
    tracing = None
    if config.tracing:
        try:
            from embedrank.server.api.tracing import start_tracing
        except ImportError as exc:
            raise ConfigError(f"--otlp-endpoint: tracing needs OpenTelemetry ({exc.name} is missing); "
                              "pip install 'embedrank[otel]'") from None
        tracing = start_tracing(config.otlp_endpoint, config.otlp_service_name)
    observer = Observer(tracing, access_log=config.access_log)
    # The request's context (id, span, access log) first: a refused token is a request too.
    interceptors: list[grpc.aio.ServerInterceptor] = [ContextInterceptor(observer)]
    if tokens is not None:
        interceptors.append(BearerTokenInterceptor(tokens))
    server = grpc.aio.server(interceptors=interceptors, options=options)
    engine = Engine(config.engine_settings, config.runtime_settings)
    app_port = _bind(server, config, certificates.credentials() if certificates is not None else None)
    app = App(config, server, app_port, engine, certificates, tokens, tracing)
    registrar = Registrar(server)  # malformed payloads -> INVALID_ARGUMENT, not grpc's traceback
    rpcs = Rpcs(calls=app.calls, observer=observer, stream_max_inflight=config.stream_max_inflight)
    embed_pb2_grpc.add_EmbedServicer_to_server(EmbedServicer(engine, rpcs), registrar)
    rerank_pb2_grpc.add_RerankServicer_to_server(RerankServicer(engine, rpcs), registrar)
    models_pb2_grpc.add_ModelsServicer_to_server(ModelsServicer(engine), registrar)
    tokenize_pb2_grpc.add_TokenizeServicer_to_server(TokenizeServicer(engine, rpcs), registrar)
    classify_pb2_grpc.add_ClassifyServicer_to_server(ClassifyServicer(engine, rpcs), registrar)
    sparse_pb2_grpc.add_SparseEmbedServicer_to_server(SparseEmbedServicer(engine, rpcs), registrar)
    multivector_pb2_grpc.add_MultiVectorEmbedServicer_to_server(MultiVectorEmbedServicer(engine, rpcs), registrar)
    hybrid_pb2_grpc.add_HybridEmbedServicer_to_server(HybridEmbedServicer(engine, rpcs), registrar)
    add_tei_services(engine, rpcs, registrar)
    if config.http_port >= 0:
        from embedrank.server.http.app import HttpServer
        from embedrank.server.http.limits import DoorLimits

        app.http = HttpServer(
            engine, app.calls, host=config.host, port=config.http_port, reuse_port=config.processes > 1,
            limits=DoorLimits(
                head_timeout_s=config.head_timeout_s, body_timeout_s=config.body_timeout_s,
                idle_timeout_s=config.idle_timeout_s, max_connections=config.max_connections,
                max_body_bytes=max_bytes, max_body_mb=config.max_message_mb,
            ),
            tokens=tokens, tls_files=tls_files, observer=observer,
        )
    health_pb2_grpc.add_HealthServicer_to_server(app.health, server)
    reflection.enable_server_reflection(
        (*SERVICES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    return app


def _bind(server: grpc.aio.Server, config: ServerConfig, credentials: grpc.ServerCredentials | None = None) -> int:
    """Listen on --host:--port (TLS with ``credentials``); a port in use is one line that names the
    flag, not grpc's traceback."""
    address = f"{config.host}:{config.port}"
    # Probed first, so that grpc does not log its own error line as well; a name that our resolver
    # cannot resolve is still left to grpc's.
    problem = _bind_problem(config.host, config.port, reuse_port=config.processes > 1)
    if problem is None or problem[0] == _UNRESOLVED:
        try:
            port = int(
                server.add_secure_port(address, credentials) if credentials is not None
                else server.add_insecure_port(address)
            )
        except RuntimeError:  # grpc: "Failed to bind to address ..."
            port = 0
        if port:
            return port
        problem = problem or ("grpc could not bind it", _FIX_PORT)
    why, fix = problem
    raise ConfigError(f"cannot listen on {address}: {why}; {fix}")


_FIX_PORT = "choose another port with --port or EMBEDRANK_PORT (0 picks a free one)"
_UNRESOLVED = "the host name does not resolve"
_FIX_HOST = "choose another address with --host or EMBEDRANK_HOST (0.0.0.0: all of this machine's)"


def _bind_problem(host: str, port: int, *, reuse_port: bool = False) -> tuple[str, str] | None:
    """Why a socket cannot listen on host:port, and which setting to change; None when it can."""
    try:
        addresses = socket.getaddrinfo(host.strip("[]") or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return _UNRESOLVED, _FIX_HOST
    for family, kind, proto, _, sockaddr in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as grpc does
            if reuse_port:  # --processes: the port is shared with the other server processes
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                probe.bind(sockaddr)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return "the port is in use (another server?)", _FIX_PORT
                if exc.errno == errno.EADDRNOTAVAIL:
                    return "the address is not one of this machine's", _FIX_HOST
                if exc.errno == errno.EACCES:
                    return "permission denied (ports below 1024 need privileges)", _FIX_PORT
                return exc.strerror or str(exc), _FIX_PORT
    return None


def announce(config: ServerConfig, line: str) -> None:
    """A line on stdout for whoever started the server; with --log-format json, a JSON object like the log's."""
    print(json_line("INFO", __name__, line) if config.log_format == "json" else line, flush=True)


async def serve(config: ServerConfig, prepare: Prepare | None = None) -> None:
    """Run until SIGINT/SIGTERM, then shut down gracefully. ``prepare`` runs once the server answers
    (health NOT_SERVING) and before the models load; a signal meanwhile cancels it."""
    app = build_server(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, app.reload)
    starting = asyncio.ensure_future(app.start(prepare))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((starting, stopping), return_when=asyncio.FIRST_COMPLETED)
        if not starting.done() and not app.loading:  # a signal while preparing: stop there
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            log.info("stopped before serving")
            await app.stop(0)
            return
        await starting
    except BaseException:
        starting.cancel()
        stopping.cancel()
        await app.stop(0)
        raise
    watcher = app.watcher = ModelWatcher(
        app.engine, poll_s=config.model_poll_s,
        on_poll=app.reload_files_if_changed if app.certificates is not None or app.tokens is not None else None,
    )
    watcher.start()
    if config.metrics_port >= 0:
        from prometheus_client import start_http_server

        try:
            metrics_server, _ = start_http_server(config.metrics_port, addr=config.host)
        except OSError as exc:
            await app.stop(0)
            raise ConfigError(
                f"--metrics-port {config.metrics_port}: cannot listen on it ({exc.strerror or exc}); choose another "
                "with --metrics-port or EMBEDRANK_METRICS_PORT (0 picks a free one, -1 turns metrics off)"
            ) from None
        log.info("metrics on http://%s:%d/metrics", config.host, metrics_server.server_port)
    announce(config, f"embedrank listening on {config.host}:{app.port}")
    if app.http is not None:
        announce(config, f"embedrank HTTP listening on {app.http.scheme}://{config.host}:{app.http.port}")
    if config.port_file:  # written whole, then renamed: a reader never sees it half-written
        partial = f"{config.port_file}.{os.getpid()}.tmp"
        with open(partial, "w", encoding="utf-8") as fh:
            fh.write(f"{app.port}\n")
        os.replace(partial, config.port_file)
    await stopping
    log.info("shutting down: %gs for in-flight requests", config.shutdown_grace_s)
    await watcher.close()  # no version swaps while draining
    await app.stop()
