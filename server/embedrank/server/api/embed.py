"""embedrank.v1.Embed: Encode and EncodeStream."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

import grpc

from embedrank.server.api import convert
from embedrank.server.api.rpc import Rpcs
from embedrank.server.engine.engine import Engine
from embedrank.v1 import embed_pb2, embed_pb2_grpc


class EmbedServicer(embed_pb2_grpc.EmbedServicer):
    def __init__(self, engine: Engine, rpcs: Rpcs) -> None:
        self._engine = engine
        self._rpcs = rpcs

    async def _encode(self, request: embed_pb2.EncodeRequest, deadline: float | None, request_id: str) -> embed_pb2.EncodeResponse:
        model = self._engine.embedding(request.model)
        result = await model.encode(convert.encode_params(request), deadline=deadline, request_id=request_id)
        return convert.encode_response(result)

    async def Encode(  # noqa: N802 (gRPC method name)
        self, request: embed_pb2.EncodeRequest, context: grpc.aio.ServicerContext
    ) -> embed_pb2.EncodeResponse:
        return await self._rpcs.unary("Encode", self._encode, request, context)

    async def EncodeStream(  # noqa: N802
        self, request_iterator: AsyncIterable[embed_pb2.EncodeStreamRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[embed_pb2.EncodeStreamResponse]:
        async for response in self._rpcs.stream(
            "EncodeStream", self._encode, request_iterator, context, embed_pb2.EncodeStreamResponse
        ):
            yield response
