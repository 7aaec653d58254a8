"""embedrank.v1.Rerank: Rerank and RerankStream."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

import grpc

from embedrank.server.api import convert
from embedrank.server.api.rpc import Rpcs
from embedrank.model.errors import InvalidArgument
from embedrank.server.engine.engine import Engine
from embedrank.server.engine.hybrid import HybridModel
from embedrank.v1 import rerank_pb2, rerank_pb2_grpc


class RerankServicer(rerank_pb2_grpc.RerankServicer):
    def __init__(self, engine: Engine, rpcs: Rpcs) -> None:
        self._engine = engine
        self._rpcs = rpcs

    async def _rerank(self, request: rerank_pb2.RerankRequest, deadline: float | None, request_id: str) -> rerank_pb2.RerankResponse:
        model = self._engine.reranker(request.model)
        params = convert.rerank_params(request)
        if params.hybrid_options and not isinstance(model, HybridModel):
            raise InvalidArgument(params.hybrid_options[0], f"is for hybrid (BGE-M3) models; {model.name} is a "
                                  f"{model.manifest.kind.value} model: leave it unset")
        result = await model.rerank(params, deadline=deadline, request_id=request_id)
        return convert.rerank_response(result)

    async def Rerank(  # noqa: N802 (gRPC method name)
        self, request: rerank_pb2.RerankRequest, context: grpc.aio.ServicerContext
    ) -> rerank_pb2.RerankResponse:
        return await self._rpcs.unary("Rerank", self._rerank, request, context)

    async def RerankStream(  # noqa: N802
        self, request_iterator: AsyncIterable[rerank_pb2.RerankStreamRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[rerank_pb2.RerankStreamResponse]:
        async for response in self._rpcs.stream(
            "RerankStream", self._rerank, request_iterator, context, rerank_pb2.RerankStreamResponse
        ):
            yield response
