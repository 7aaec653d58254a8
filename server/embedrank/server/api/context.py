"""Each request's context, opened in one place per port: its request id, its span, its access-log line.

gRPC: ``ContextInterceptor`` wraps every method handler of the server (ours, and any servicer added
later); HTTP: the middleware of server/http/context.py. Both call ``Observer.open`` / ``close``:

- the request id is the caller's ``x-request-id`` (gRPC metadata / HTTP header, at most 128 visible
  ASCII characters, else INVALID_ARGUMENT), or one made; it is answered in the trailing metadata (the
  ``X-Request-Id`` header on HTTP), written in the log lines of the request, and put on its span;
- with tracing on (--otlp-endpoint, server/api/tracing.py) the request span is a child of the caller's
  W3C context (traceparent / tracestate / baggage); the engine reports its stages into the scope
  (server/engine/observe.py);
- with --access-log, a line per request (logger ``embedrank.access``).

Each item of a bidi stream is a request of its own (``Observer.open_item``, called by server/api/stream.py):
its own id, scope, span (a child of the stream's) and access-log line; the stream's adds up its items.

Health checks and reflection are left alone: probes every few seconds would fill the traces and the log.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import grpc

from embedrank.model.errors import InvalidArgument
from embedrank.server.api.status import REQUEST_ID_HEADER, to_grpc_status
from embedrank.server.engine import observe
from embedrank.server.statuses import new_request_id

if TYPE_CHECKING:
    from embedrank.server.api.tracing import Attributes, Tracing

access = logging.getLogger("embedrank.access")

MAX_REQUEST_ID = 128
UNOBSERVED_GRPC = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def caller_request_id(sent: str | None) -> str:
    """The caller's request id when it sent a usable one, else a new one."""
    if not sent:
        return new_request_id()
    if len(sent) > MAX_REQUEST_ID or not sent.isascii() or not sent.isprintable():
        raise InvalidArgument(
            REQUEST_ID_HEADER,
            f"has {len(sent)} characters; send at most {MAX_REQUEST_ID} visible ASCII characters (or none: one is made)",
        )
    return sent


class Observer:
    """What the transports share: open a request's scope, close it (span, access log)."""

    def __init__(self, tracing: Tracing | None, *, access_log: bool) -> None:
        self.tracing = tracing
        self.access_log = access_log

    def open(self, name: str, carrier: Mapping[str, str], request_id: str, attributes: Attributes) -> observe.Scope:
        scope = observe.Scope(request_id, route=name)
        if self.tracing is not None:
            attributes["embedrank.request_id"] = request_id
            scope.span = self.tracing.start(name, carrier, attributes)
        return scope

    def open_item(self, stream: observe.Scope | None, request_id: str, *, rpc: str, item_id: str = "") -> observe.Scope:
        """One item of a bidi stream, a request of its own: its own id, access-log line and span, the span a
        child of the stream's (docs/deploy.md says why a child, not a root linked to it). ``item_id``: the
        caller's id of the item, when its messages carry one. No span work unless the stream's span records."""
        if stream is None:  # outside the context interceptor (not served by build_server's port)
            return observe.Scope(request_id, route=rpc)
        stream.items = (stream.items or 0) + 1
        scope = observe.Scope(request_id, route=stream.route, stream=stream)
        if stream.span is not None and self.tracing is not None:
            attributes: Attributes = {"embedrank.request_id": request_id, "embedrank.stream.item": stream.items}
            if item_id:
                attributes["embedrank.stream.item_id"] = item_id
            scope.span = self.tracing.start_child(stream.span, f"{stream.route} item", attributes)
        return scope

    def close(self, scope: observe.Scope, start: int, *, route: str, code: str, status: str | int, error: bool,
              message: str = "", attributes: Attributes | None = None) -> None:
        """``code``: the status table's gRPC code name ("OK" on success); ``status``: what the caller saw (the
        code, or the HTTP status); ``error``: the span's status is ERROR."""
        end = time.monotonic_ns()
        stream = scope.stream
        if stream is not None:  # an item: the stream's span and access-log line add up what its items did
            if scope.model:
                stream.model, stream.version, stream.kind = scope.model, scope.version, scope.kind
            stream.inputs += scope.inputs
            stream.tokens += scope.tokens
            stream.windows += scope.windows
        if scope.span is not None and self.tracing is not None:
            # The spans are built on the loop's next turn: the answer is sent first (the SDK's work, ~20-60 us a
            # span here, stays off the caller's latency).
            asyncio.get_running_loop().call_soon(functools.partial(
                self.tracing.finish, scope, end, code=code, error=error, message=message, attributes=attributes or {}))
        if self.access_log:
            ms = (end - start) / 1e6
            fields: dict[str, Any] = {
                "route": route, "status": status, "model": scope.model or None, "inputs": scope.inputs,
                "tokens": scope.tokens, "duration_ms": round(ms, 3),
            }
            line, args = "%s %s model=%s inputs=%d tokens=%d %.2fms", [route, status, scope.model or "-", scope.inputs,
                                                                       scope.tokens, ms]
            if scope.items is not None:  # a stream: its items have lines of their own
                fields["items"] = scope.items
                line += " items=%d"
                args.append(scope.items)
            if stream is not None:
                fields["stream_request_id"] = stream.request_id
                line += " stream=%s"
                args.append(stream.request_id)
            access.info(line, *args, extra={"request_ids": observe.ids_of(scope), "access": fields})


Behavior = Callable[[Any, grpc.aio.ServicerContext], Any]


class ContextInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Every RPC of the gRPC port (but health and reflection) inside its request's scope."""

    def __init__(self, observer: Observer) -> None:
        self.observer = observer
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method: str = details.method
        if handler is None or method.startswith(UNOBSERVED_GRPC):
            return handler
        cached = self._wrapped.get(method)
        if cached is None or cached[0] is not handler:
            cached = (handler, self._wrap(handler, method))
            self._wrapped[method] = cached
        return cached[1]

    def _wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        service, _, name = method.lstrip("/").rpartition("/")
        attributes: Attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
        rpc = method.lstrip("/")
        ser, de = handler.response_serializer, handler.request_deserializer
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(self._unary(handler.unary_unary, rpc, attributes), de, ser)
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(self._unary(handler.stream_unary, rpc, attributes), de, ser)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(handler.unary_stream, rpc, attributes, bidi=False), de, ser)
        return grpc.stream_stream_rpc_method_handler(
            self._stream(handler.stream_stream, rpc, attributes, bidi=True), de, ser)

    def _open(self, context: grpc.aio.ServicerContext, rpc: str, attributes: Attributes) -> observe.Scope:
        metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        request_id = caller_request_id(metadata.get(REQUEST_ID_HEADER))
        context.set_trailing_metadata(((REQUEST_ID_HEADER, request_id),))
        return self.observer.open(rpc, metadata, request_id, dict(attributes))

    def _close(self, scope: observe.Scope, start: int, context: grpc.aio.ServicerContext, rpc: str,
               failed: BaseException | None) -> None:
        code = context.code()
        if isinstance(code, grpc.StatusCode):
            name = code.name
        elif failed is None:
            name = "OK"
        else:  # the handler raised instead of aborting: grpc answers UNKNOWN
            name = "CANCELLED" if isinstance(failed, asyncio.CancelledError) else "UNKNOWN"
        code_value = grpc.StatusCode[name].value[0]
        message = context.details() or "" if name != "OK" else ""
        # Any code but OK marks the span ERROR, as opentelemetry-instrumentation-grpc's server side does.
        self.observer.close(scope, start, route=rpc, code=name, status=name, error=name != "OK", message=str(message),
                            attributes={"rpc.grpc.status_code": code_value})

    async def _refuse(self, context: grpc.aio.ServicerContext, exc: InvalidArgument) -> None:
        status = to_grpc_status(exc, new_request_id())
        await context.abort(status.code, status.details, trailing_metadata=status.trailing_metadata)

    def _unary(self, inner: Behavior, rpc: str, attributes: Attributes) -> Behavior:
        async def behavior(request: Any, context: grpc.aio.ServicerContext) -> Any:
            start = time.monotonic_ns()
            try:
                scope = self._open(context, rpc, attributes)
            except InvalidArgument as exc:
                await self._refuse(context, exc)
            observe.current.set(scope)  # the RPC's own task (grpc.aio runs one per call): no reset needed
            try:
                response = await inner(request, context)
            except BaseException as exc:
                self._close(scope, start, context, rpc, exc)
                raise
            self._close(scope, start, context, rpc, None)
            return response

        return behavior

    def _stream(self, inner: Behavior, rpc: str, attributes: Attributes, *, bidi: bool) -> Behavior:
        async def behavior(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            start = time.monotonic_ns()
            try:
                scope = self._open(context, rpc, attributes)
            except InvalidArgument as exc:
                await self._refuse(context, exc)
            if bidi:  # its items are requests of their own (server/api/stream.py), counted here
                scope.items = 0
            observe.current.set(scope)  # the RPC's own task (grpc.aio runs one per call): no reset needed
            try:
                answers = inner(request, context)
                if inspect.isawaitable(answers):  # a handler that writes with context.write (or aborts)
                    await answers
                else:
                    async for response in answers:
                        yield response
            except BaseException as exc:
                self._close(scope, start, context, rpc, exc)
                raise
            self._close(scope, start, context, rpc, None)

        return behavior
