"""embedrank.v1.Embed: Encode and EncodeStream."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

import grpc

from embedrank.server.api import convert
from embedrank.server.api.drain import Calls
from embedrank.server.api.status import guarded, new_request_id
from embedrank.server.api.stream import answer_stream
from embedrank.server.engine.engine import Engine
from embedrank.v1 import embed_pb2, embed_pb2_grpc


class EmbedServicer(embed_pb2_grpc.EmbedServicer):
    def __init__(self, engine: Engine, *, calls: Calls, stream_max_inflight: int) -> None:
        self._engine = engine
        self._calls = calls
        self._stream_max_inflight = stream_max_inflight

    async def _encode(self, request: embed_pb2.EncodeRequest, deadline: float | None, request_id: str) -> embed_pb2.EncodeResponse:
        model = self._engine.embedding(request.model)
        result = await model.encode(convert.encode_params(request), deadline=deadline, request_id=request_id)
        return convert.encode_response(result)

    async def Encode(  # noqa: N802 (gRPC method name)
        self, request: embed_pb2.EncodeRequest, context: grpc.aio.ServicerContext
    ) -> embed_pb2.EncodeResponse:
        rid = new_request_id()
        return await guarded(context, rid, lambda: self._encode(request, convert.deadline_of(context), rid), rpc="Encode", calls=self._calls)

    async def EncodeStream(  # noqa: N802
        self, request_iterator: AsyncIterable[embed_pb2.EncodeStreamRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[embed_pb2.EncodeStreamResponse]:
        deadline = convert.deadline_of(context)
        answers = answer_stream(
            request_iterator,
            lambda request, rid: self._encode(request, deadline, rid),
            embed_pb2.EncodeStreamResponse,
            context=context,
            calls=self._calls,
            max_inflight=self._stream_max_inflight,
            rpc="EncodeStream",
        )
        async for response in answers:
            yield response
