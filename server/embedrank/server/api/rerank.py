"""embedrank.v1.Rerank: Rerank and RerankStream."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

import grpc

from embedrank.server.api import convert
from embedrank.server.api.drain import Calls
from embedrank.server.api.status import guarded, new_request_id
from embedrank.server.api.stream import answer_stream
from embedrank.server.engine.engine import Engine
from embedrank.v1 import rerank_pb2, rerank_pb2_grpc


class RerankServicer(rerank_pb2_grpc.RerankServicer):
    def __init__(self, engine: Engine, *, calls: Calls, stream_max_inflight: int) -> None:
        self._engine = engine
        self._calls = calls
        self._stream_max_inflight = stream_max_inflight

    async def _rerank(self, request: rerank_pb2.RerankRequest, deadline: float | None, request_id: str) -> rerank_pb2.RerankResponse:
        model = self._engine.reranker(request.model)
        result = await model.rerank(convert.rerank_params(request), deadline=deadline, request_id=request_id)
        return convert.rerank_response(result)

    async def Rerank(  # noqa: N802 (gRPC method name)
        self, request: rerank_pb2.RerankRequest, context: grpc.aio.ServicerContext
    ) -> rerank_pb2.RerankResponse:
        rid = new_request_id()
        return await guarded(context, rid, lambda: self._rerank(request, convert.deadline_of(context), rid), rpc="Rerank", calls=self._calls)

    async def RerankStream(  # noqa: N802
        self, request_iterator: AsyncIterable[rerank_pb2.RerankStreamRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[rerank_pb2.RerankStreamResponse]:
        deadline = convert.deadline_of(context)
        answers = answer_stream(
            request_iterator,
            lambda request, rid: self._rerank(request, deadline, rid),
            rerank_pb2.RerankStreamResponse,
            context=context,
            calls=self._calls,
            max_inflight=self._stream_max_inflight,
            rpc="RerankStream",
        )
        async for response in answers:
            yield response
