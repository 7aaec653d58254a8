"""embedrank.v1.MultiVectorEmbed: EncodeMultiVector and EncodeMultiVectorStream. (Rerank on a
multi-vector model goes through api/rerank.py: the engine's reranker() answers with this model.)"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

import grpc
import numpy as np

from embedrank.server.api import convert
from embedrank.server.api.rpc import Rpcs
from embedrank.server.engine.engine import Engine
from embedrank.server.engine.multivector import MultiVectorParams, MultiVectorResult
from embedrank.server.engine.postprocess import OutputPrecision
from embedrank.v1 import multivector_pb2, multivector_pb2_grpc


def multi_vector_params(req: multivector_pb2.EncodeMultiVectorRequest) -> MultiVectorParams:
    return MultiVectorParams(
        texts=list(req.texts),
        input_type=convert.input_type(req.input_type),
        prompt_name=req.prompt_name,
        truncate=convert.truncation(req.truncation),
        precision=convert.precision(req.precision),
    )


def multi_vector_response(result: MultiVectorResult) -> multivector_pb2.EncodeMultiVectorResponse:
    rows = np.concatenate(result.vectors) if result.vectors else np.zeros((0, result.dimensions), np.float32)
    if result.precision is OutputPrecision.FLOAT32:
        rows = rows.astype("<f4", copy=False)
    return multivector_pb2.EncodeMultiVectorResponse(
        embeddings=convert.embeddings(rows, result.precision, result.dimensions),
        vector_counts=[v.shape[0] for v in result.vectors],
        token_counts=result.token_counts,
        truncated=result.truncated,
        metadata=convert.metadata(result.usage),
    )


class MultiVectorEmbedServicer(multivector_pb2_grpc.MultiVectorEmbedServicer):
    def __init__(self, engine: Engine, rpcs: Rpcs) -> None:
        self._engine = engine
        self._rpcs = rpcs

    async def _encode(
        self, request: multivector_pb2.EncodeMultiVectorRequest, deadline: float | None, request_id: str
    ) -> multivector_pb2.EncodeMultiVectorResponse:
        model = self._engine.multi_vector(request.model)
        result = await model.encode_multi_vector(multi_vector_params(request), deadline=deadline, request_id=request_id)
        return multi_vector_response(result)

    async def EncodeMultiVector(  # noqa: N802 (gRPC method name)
        self, request: multivector_pb2.EncodeMultiVectorRequest, context: grpc.aio.ServicerContext
    ) -> multivector_pb2.EncodeMultiVectorResponse:
        return await self._rpcs.unary("EncodeMultiVector", self._encode, request, context)

    async def EncodeMultiVectorStream(  # noqa: N802
        self,
        request_iterator: AsyncIterable[multivector_pb2.EncodeMultiVectorStreamRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[multivector_pb2.EncodeMultiVectorStreamResponse]:
        async for response in self._rpcs.stream(
            "EncodeMultiVectorStream", self._encode, request_iterator, context,
            multivector_pb2.EncodeMultiVectorStreamResponse,
        ):
            yield response
