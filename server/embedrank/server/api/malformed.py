"""Request bytes that do not parse: INVALID_ARGUMENT with a plain message, one rate-limited log line.

Left to grpc, a payload that is not a valid protobuf message raises inside the generated
deserializer: grpc logs an ERROR with a traceback for every such call (an unauthenticated
caller could flood the logs) and answers UNKNOWN with a Python exception text. Instead, the
servicers are registered through ``Registrar``, which gives each method a deserializer that
never raises: a bad payload becomes a ``Malformed`` value, and the handler answers it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from embedrank.server import metrics
from embedrank.server.api.status import new_request_id, to_grpc_status
from embedrank.model.errors import InvalidArgument

log = logging.getLogger(__name__)


class Malformed:
    """A request payload that did not parse as the method's message type."""

    __slots__ = ("type_name", "size")

    def __init__(self, type_name: str, size: int) -> None:
        self.type_name = type_name
        self.size = size


class _RateLimitedLog:
    """At most one line per ``every`` seconds; the lines in between are counted, not written."""

    def __init__(self, every: float = 1.0) -> None:
        self._every = every
        self._next = 0.0
        self._skipped = 0

    def warning(self, msg: str, *args: object) -> None:
        now = time.monotonic()
        if now < self._next:
            self._skipped += 1
            return
        if self._skipped:
            msg += " (%d more since the last such line)"
            args = (*args, self._skipped)
        self._skipped = 0
        self._next = now + self._every
        log.warning(msg, *args)


_log = _RateLimitedLog()


def _safe(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None
    type_name = getattr(getattr(deserialize, "__self__", None), "__name__", "request")

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception:  # any parse failure is the caller's bytes, answered below
            return Malformed(type_name, len(data))

    return parse


def _refusal(request: Malformed, rpc: str) -> InvalidArgument:
    rid = new_request_id()
    _log.warning("request %s: %s payload of %d bytes is not a valid %s message; refused",
                 rid, rpc, request.size, request.type_name)
    return InvalidArgument("request", f"the payload is not a valid {request.type_name} message (request id {rid})")


async def _refuse(request: Malformed, context: grpc.aio.ServicerContext, rpc: str) -> None:
    exc = _refusal(request, rpc)
    status = to_grpc_status(exc, "")
    metrics.REQUESTS.labels(rpc, status.code.name).inc()
    await context.abort(status.code, status.details, trailing_metadata=status.trailing_metadata)


def _guard(handler: grpc.RpcMethodHandler, rpc: str) -> grpc.RpcMethodHandler:
    deserializer = _safe(handler.request_deserializer)
    if handler.unary_unary is not None:
        inner_uu = handler.unary_unary

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if isinstance(request, Malformed):
                await _refuse(request, context, rpc)
            return await inner_uu(request, context)

        return handler._replace(request_deserializer=deserializer, unary_unary=unary_unary)
    async def checked(requests: Any) -> AsyncIterator[Any]:
        async for request in requests:
            if isinstance(request, Malformed):  # ends the stream after the answers before it
                raise _refusal(request, rpc)
            yield request

    if handler.stream_stream is not None:
        inner_ss = handler.stream_stream

        async def stream_stream(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            async for response in inner_ss(checked(requests), context):
                yield response

        return handler._replace(request_deserializer=deserializer, stream_stream=stream_stream)
    if handler.stream_unary is not None:  # tei.v1 RerankStream
        inner_su = handler.stream_unary

        async def stream_unary(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            return await inner_su(checked(requests), context)

        return handler._replace(request_deserializer=deserializer, stream_unary=stream_unary)
    return handler  # no other kinds in our services


class Registrar:
    """Stands in for the server in the generated ``add_XServicer_to_server(servicer, server)``."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        """Ignored: the generated code registers the same methods below, which we guard."""

    def add_registered_method_handlers(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        guarded = {name: _guard(h, name) for name, h in handlers.items()}
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, guarded),))
        self._server.add_registered_method_handlers(service, guarded)
