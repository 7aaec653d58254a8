"""embedrank.v1.SparseEmbed: EncodeSparse and EncodeSparseStream."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

import grpc

from embedrank.server.api import convert
from embedrank.server.api.rpc import Rpcs
from embedrank.server.engine.engine import Engine
from embedrank.server.engine.sparse import SparseParams, SparseResult, SparseVector
from embedrank.v1 import sparse_pb2, sparse_pb2_grpc


def sparse_params(req: sparse_pb2.EncodeSparseRequest) -> SparseParams:
    return SparseParams(
        texts=list(req.texts),
        input_type=convert.input_type(req.input_type),
        prompt_name=req.prompt_name,
        top_k=req.top_k if req.HasField("top_k") else None,
        return_tokens=req.return_tokens,
        truncate=convert.truncation(req.truncation),
    )


def sparse_vector(v: SparseVector) -> sparse_pb2.SparseVector:
    return sparse_pb2.SparseVector(indices=v.indices.tolist(), values=v.values.tolist(), tokens=v.tokens)


def sparse_response(result: SparseResult) -> sparse_pb2.EncodeSparseResponse:
    return sparse_pb2.EncodeSparseResponse(
        vectors=[sparse_vector(v) for v in result.vectors],
        dimensions=result.dimensions,
        token_counts=result.token_counts,
        truncated=result.truncated,
        metadata=convert.metadata(result.usage),
    )


class SparseEmbedServicer(sparse_pb2_grpc.SparseEmbedServicer):
    def __init__(self, engine: Engine, rpcs: Rpcs) -> None:
        self._engine = engine
        self._rpcs = rpcs

    async def _encode(
        self, request: sparse_pb2.EncodeSparseRequest, deadline: float | None, request_id: str
    ) -> sparse_pb2.EncodeSparseResponse:
        model = self._engine.sparse(request.model)
        result = await model.encode_sparse(sparse_params(request), deadline=deadline, request_id=request_id)
        return sparse_response(result)

    async def EncodeSparse(  # noqa: N802 (gRPC method name)
        self, request: sparse_pb2.EncodeSparseRequest, context: grpc.aio.ServicerContext
    ) -> sparse_pb2.EncodeSparseResponse:
        return await self._rpcs.unary("EncodeSparse", self._encode, request, context)

    async def EncodeSparseStream(  # noqa: N802
        self, request_iterator: AsyncIterable[sparse_pb2.EncodeSparseStreamRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[sparse_pb2.EncodeSparseStreamResponse]:
        async for response in self._rpcs.stream(
            "EncodeSparseStream", self._encode, request_iterator, context, sparse_pb2.EncodeSparseStreamResponse
        ):
            yield response
