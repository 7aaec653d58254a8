"""Building, starting and stopping the gRPC server."""

from __future__ import annotations

import asyncio
import logging
import signal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from embedrank.server.api.auth import BearerTokenInterceptor
from embedrank.server.api.embed import EmbedServicer
from embedrank.server.api.models import ModelsServicer
from embedrank.server.api.rerank import RerankServicer
from embedrank.server.config import ServerConfig
from embedrank.server.engine.engine import Engine
from embedrank.server.errors import ConfigError
from embedrank.v1 import embed_pb2, embed_pb2_grpc, models_pb2, models_pb2_grpc, rerank_pb2, rerank_pb2_grpc

log = logging.getLogger(__name__)

SERVICES = (
    embed_pb2.DESCRIPTOR.services_by_name["Embed"].full_name,
    rerank_pb2.DESCRIPTOR.services_by_name["Rerank"].full_name,
    models_pb2.DESCRIPTOR.services_by_name["Models"].full_name,
)


class App:
    """A built server: bound to its port, not yet started, models not yet loaded."""

    def __init__(self, config: ServerConfig, server: grpc.aio.Server, port: int, engine: Engine) -> None:
        self.config = config
        self.server = server
        self.port = port
        self.engine = engine
        self.health = health.aio.HealthServicer()

    async def start(self) -> None:
        """Start answering (health NOT_SERVING), load and warm every model, then SERVING."""
        for name in ("", *SERVICES):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.start()
        await self.engine.load()
        for name in ("", *SERVICES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("serving %d model(s) on port %d", len(self.engine.models), self.port)

    async def stop(self, grace: float | None = None) -> None:
        """Health NOT_SERVING, refuse new RPCs, let in-flight ones finish for ``grace`` seconds."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.config.shutdown_grace_s if grace is None else grace)
        await self.engine.close()


def build_server(config: ServerConfig) -> App:
    max_bytes = config.max_message_mb * 1024 * 1024
    token = config.auth_token()
    server = grpc.aio.server(
        interceptors=[BearerTokenInterceptor(token)] if token else None,
        options=[
            ("grpc.max_receive_message_length", max_bytes),
            ("grpc.max_send_message_length", max_bytes),
            ("grpc.so_reuseport", 0),
        ]
    )
    engine = Engine(config)
    app_port = server.add_insecure_port(f"{config.host}:{config.port}")
    if app_port == 0:
        raise ConfigError(f"cannot listen on {config.host}:{config.port}; is the port taken?")
    app = App(config, server, app_port, engine)
    embed_pb2_grpc.add_EmbedServicer_to_server(
        EmbedServicer(engine, stream_max_inflight=config.stream_max_inflight), server
    )
    rerank_pb2_grpc.add_RerankServicer_to_server(
        RerankServicer(engine, stream_max_inflight=config.stream_max_inflight), server
    )
    models_pb2_grpc.add_ModelsServicer_to_server(ModelsServicer(engine), server)
    health_pb2_grpc.add_HealthServicer_to_server(app.health, server)
    reflection.enable_server_reflection(
        (*SERVICES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    return app


async def serve(config: ServerConfig, *, port_file: str | None = None) -> None:
    """Run until SIGINT/SIGTERM, then shut down gracefully."""
    app = build_server(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await app.start()
    except BaseException:
        await app.stop(0)
        raise
    if config.metrics_port >= 0:
        from prometheus_client import start_http_server

        metrics_server, _ = start_http_server(config.metrics_port, addr=config.host)
        log.info("metrics on http://%s:%d/metrics", config.host, metrics_server.server_port)
    print(f"embedrank listening on {config.host}:{app.port}", flush=True)
    if port_file:
        with open(port_file, "w", encoding="utf-8") as fh:
            fh.write(f"{app.port}\n")
    await stop.wait()
    log.info("shutting down: %.0fs for in-flight requests", config.shutdown_grace_s)
    await app.stop()
