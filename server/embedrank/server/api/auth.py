"""Bearer-token authentication as a server interceptor. Health and reflection stay open."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from embedrank.server.api.status import new_request_id, to_grpc_status
from embedrank.model.errors import Unauthenticated
from embedrank.server.tokens import BearerTokens

_OPEN = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc has no types
    def __init__(self, tokens: BearerTokens) -> None:
        self._tokens = tokens  # re-read on SIGHUP (App.reload): the next call sees the new ones

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or details.method.startswith(_OPEN):
            return handler
        metadata = dict(details.invocation_metadata or ())
        try:
            self._tokens.check(metadata.get("authorization", ""), where="metadata authorization")
        except Unauthenticated as exc:
            return _refusal(handler, exc)
        return handler


def _refusal(handler: grpc.RpcMethodHandler, error: Unauthenticated) -> grpc.RpcMethodHandler:
    status = to_grpc_status(error, new_request_id())

    async def refuse(_request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(status.code, status.details)

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(refuse)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(refuse)
    return grpc.unary_unary_rpc_method_handler(refuse)
