"""What every engine RPC and its ...Stream twin share: the status table, the drain's call tracking,
the caller's deadline and the per-stream bound. A servicer writes one engine call per RPC,
``body(request, deadline, request_id) -> response``, and hands it to ``unary`` and ``stream``."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from embedrank.server.api.context import Observer
from embedrank.server.api.convert import deadline_of
from embedrank.server.api.drain import Calls
from embedrank.server.api.status import guarded, request_id
from embedrank.server.api.stream import answer_plain_stream, answer_stream

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Body = Callable[[Req, "float | None", str], Awaitable[Resp]]


class Rpcs:
    def __init__(self, *, calls: Calls, observer: Observer, stream_max_inflight: int) -> None:
        self.calls = calls
        self.observer = observer
        self.stream_max_inflight = stream_max_inflight

    async def unary(self, rpc: str, body: Body[Req, Resp], request: Req, context: grpc.aio.ServicerContext) -> Resp:
        rid = request_id()
        return await guarded(context, rid, lambda: body(request, deadline_of(context), rid), rpc=rpc, calls=self.calls)

    def stream(
        self,
        rpc: str,
        body: Body[Any, Any],
        requests: AsyncIterable[Any],
        context: grpc.aio.ServicerContext,
        response_type: Callable[..., Resp],
    ) -> AsyncIterator[Resp]:
        """The ...Stream twin: items answered in order, each with the unary RPC's body."""
        deadline = deadline_of(context)
        return answer_stream(
            requests,
            lambda request, rid: body(request, deadline, rid),
            response_type,
            context=context,
            calls=self.calls,
            observer=self.observer,
            max_inflight=self.stream_max_inflight,
            rpc=rpc,
        )

    def plain_stream(
        self, rpc: str, body: Body[Any, Resp], requests: AsyncIterable[Any], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Resp]:
        """A stream of the unary RPC's own messages (tei.v1): answered in order, each with the unary
        RPC's body; the first failure ends the stream with its status."""
        deadline = deadline_of(context)
        return answer_plain_stream(
            requests,
            lambda request, rid: body(request, deadline, rid),
            context=context,
            calls=self.calls,
            observer=self.observer,
            max_inflight=self.stream_max_inflight,
            rpc=rpc,
        )
