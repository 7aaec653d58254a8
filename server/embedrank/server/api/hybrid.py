"""embedrank.v1.HybridEmbed: EncodeHybrid and EncodeHybridStream. (Encode, EncodeSparse, EncodeMultiVector
and Rerank on a hybrid model go through their own servicers: the engine answers them with this model.)"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

import grpc
import numpy as np

from embedrank.model.errors import InvalidArgument
from embedrank.server.api import convert
from embedrank.server.api.rpc import Rpcs
from embedrank.server.api.sparse import sparse_vector
from embedrank.server.engine.engine import Engine
from embedrank.server.engine.hybrid import HybridOutput, HybridParams, HybridResult
from embedrank.server.engine.postprocess import OutputPrecision
from embedrank.v1 import hybrid_pb2, hybrid_pb2_grpc

_OUTPUTS = {
    hybrid_pb2.HYBRID_OUTPUT_DENSE: HybridOutput.DENSE,
    hybrid_pb2.HYBRID_OUTPUT_SPARSE: HybridOutput.SPARSE,
    hybrid_pb2.HYBRID_OUTPUT_MULTI_VECTOR: HybridOutput.MULTI_VECTOR,
}


def hybrid_params(req: hybrid_pb2.EncodeHybridRequest) -> HybridParams:
    outputs = set()
    for i, value in enumerate(req.outputs):
        if value not in _OUTPUTS:
            raise InvalidArgument(f"outputs[{i}]", f"{value} is not an output (DENSE, SPARSE or MULTI_VECTOR)")
        outputs.add(_OUTPUTS[value])
    return HybridParams(
        texts=list(req.texts),
        input_type=convert.input_type(req.input_type),
        prompt_name=req.prompt_name,
        truncate=convert.truncation(req.truncation),
        outputs=frozenset(outputs) if outputs else frozenset(HybridOutput),
        sparse_top_k=req.sparse_top_k if req.HasField("sparse_top_k") else None,
        return_tokens=req.return_tokens,
        precision=convert.precision(req.precision),
    )


def hybrid_response(result: HybridResult) -> hybrid_pb2.EncodeHybridResponse:
    response = hybrid_pb2.EncodeHybridResponse(
        sparse_dimensions=result.sparse_dimensions,
        token_counts=result.token_counts,
        truncated=result.truncated,
        metadata=convert.metadata(result.usage),
    )
    if result.dense is not None:
        response.dense.CopyFrom(convert.embeddings(result.dense, result.precision, result.dimensions))
    if result.sparse is not None:
        response.sparse.extend(sparse_vector(v) for v in result.sparse)
    if result.multi_vector is not None:
        rows = np.concatenate(result.multi_vector)
        if result.precision is OutputPrecision.FLOAT32:
            rows = rows.astype("<f4", copy=False)
        response.multi_vector.CopyFrom(convert.embeddings(rows, result.precision, result.colbert_dimensions))
        response.vector_counts.extend(v.shape[0] for v in result.multi_vector)
    return response


class HybridEmbedServicer(hybrid_pb2_grpc.HybridEmbedServicer):
    def __init__(self, engine: Engine, rpcs: Rpcs) -> None:
        self._engine = engine
        self._rpcs = rpcs

    async def _encode(
        self, request: hybrid_pb2.EncodeHybridRequest, deadline: float | None, request_id: str
    ) -> hybrid_pb2.EncodeHybridResponse:
        model = self._engine.hybrid(request.model)
        result = await model.encode_hybrid(hybrid_params(request), deadline=deadline, request_id=request_id)
        return hybrid_response(result)

    async def EncodeHybrid(  # noqa: N802 (gRPC method name)
        self, request: hybrid_pb2.EncodeHybridRequest, context: grpc.aio.ServicerContext
    ) -> hybrid_pb2.EncodeHybridResponse:
        return await self._rpcs.unary("EncodeHybrid", self._encode, request, context)

    async def EncodeHybridStream(  # noqa: N802
        self, request_iterator: AsyncIterable[hybrid_pb2.EncodeHybridStreamRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[hybrid_pb2.EncodeHybridStreamResponse]:
        async for response in self._rpcs.stream(
            "EncodeHybridStream", self._encode, request_iterator, context, hybrid_pb2.EncodeHybridStreamResponse
        ):
            yield response
