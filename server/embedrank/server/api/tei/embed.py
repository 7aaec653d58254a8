"""tei.v1.Embed: Embed, EmbedSparse, EmbedAll and their ...Stream twins, over the engine calls of
embedrank.v1's Encode, EncodeSparse and EncodeMultiVector (one text per message)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterable, AsyncIterator

import grpc
import numpy as np

from embedrank.server.api.rpc import Rpcs
from embedrank.server.api.tei.common import ONE_INPUT, fields, metadata, model_name, truncation
from embedrank.server.engine.engine import Engine
from embedrank.server.engine.multivector import MultiVectorParams
from embedrank.server.engine.requests import EncodeParams
from embedrank.server.engine.sparse import SparseParams
from embedrank.tei.v1 import tei_pb2, tei_pb2_grpc


class TeiEmbedServicer(tei_pb2_grpc.EmbedServicer):
    def __init__(self, engine: Engine, rpcs: Rpcs) -> None:
        self._engine = engine
        self._rpcs = rpcs

    async def _embed(
        self, name: str, request: tei_pb2.EmbedRequest, deadline: float | None, request_id: str
    ) -> tei_pb2.EmbedResponse:
        model = self._engine.embedding(name)
        params = EncodeParams(
            texts=[request.inputs],
            prompt_name=request.prompt_name,
            normalize=request.normalize if request.HasField("normalize") else True,  # TEI: unset = true
            dimensions=request.dimensions,
            truncate=truncation(request.truncate, request.truncation_direction),
        )
        with fields(ONE_INPUT):
            result = await model.encode(params, deadline=deadline, request_id=request_id)
        return tei_pb2.EmbedResponse(embeddings=result.embeddings[0].tolist(), metadata=metadata(result.usage))

    async def _sparse(
        self, name: str, request: tei_pb2.EmbedSparseRequest, deadline: float | None, request_id: str
    ) -> tei_pb2.EmbedSparseResponse:
        model = self._engine.sparse(name)
        params = SparseParams(
            texts=[request.inputs],
            prompt_name=request.prompt_name,
            truncate=truncation(request.truncate, request.truncation_direction),
        )
        with fields(ONE_INPUT):
            result = await model.encode_sparse(params, deadline=deadline, request_id=request_id)
        vector = result.vectors[0]
        order = np.argsort(vector.indices, kind="stable")  # TEI lists them by vocabulary id
        return tei_pb2.EmbedSparseResponse(
            sparse_embeddings=[
                tei_pb2.SparseValue(index=int(i), value=float(v))
                for i, v in zip(vector.indices[order], vector.values[order])
            ],
            metadata=metadata(result.usage),
        )

    async def _all(
        self, name: str, request: tei_pb2.EmbedAllRequest, deadline: float | None, request_id: str
    ) -> tei_pb2.EmbedAllResponse:
        model = self._engine.multi_vector(name)
        params = MultiVectorParams(
            texts=[request.inputs],
            prompt_name=request.prompt_name,
            truncate=truncation(request.truncate, request.truncation_direction),
        )
        with fields(ONE_INPUT):
            result = await model.encode_multi_vector(params, deadline=deadline, request_id=request_id)
        return tei_pb2.EmbedAllResponse(
            token_embeddings=[tei_pb2.TokenEmbedding(embeddings=row.tolist()) for row in result.vectors[0]],
            metadata=metadata(result.usage),
        )

    async def Embed(  # noqa: N802 (gRPC method name)
        self, request: tei_pb2.EmbedRequest, context: grpc.aio.ServicerContext
    ) -> tei_pb2.EmbedResponse:
        return await self._rpcs.unary("tei.Embed", functools.partial(self._embed, model_name(context)), request, context)

    async def EmbedStream(  # noqa: N802
        self, request_iterator: AsyncIterable[tei_pb2.EmbedRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[tei_pb2.EmbedResponse]:
        body = functools.partial(self._embed, model_name(context))
        async for response in self._rpcs.plain_stream("tei.EmbedStream", body, request_iterator, context):
            yield response

    async def EmbedSparse(  # noqa: N802
        self, request: tei_pb2.EmbedSparseRequest, context: grpc.aio.ServicerContext
    ) -> tei_pb2.EmbedSparseResponse:
        body = functools.partial(self._sparse, model_name(context))
        return await self._rpcs.unary("tei.EmbedSparse", body, request, context)

    async def EmbedSparseStream(  # noqa: N802
        self, request_iterator: AsyncIterable[tei_pb2.EmbedSparseRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[tei_pb2.EmbedSparseResponse]:
        body = functools.partial(self._sparse, model_name(context))
        async for response in self._rpcs.plain_stream("tei.EmbedSparseStream", body, request_iterator, context):
            yield response

    async def EmbedAll(  # noqa: N802
        self, request: tei_pb2.EmbedAllRequest, context: grpc.aio.ServicerContext
    ) -> tei_pb2.EmbedAllResponse:
        return await self._rpcs.unary("tei.EmbedAll", functools.partial(self._all, model_name(context)), request, context)

    async def EmbedAllStream(  # noqa: N802
        self, request_iterator: AsyncIterable[tei_pb2.EmbedAllRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[tei_pb2.EmbedAllResponse]:
        body = functools.partial(self._all, model_name(context))
        async for response in self._rpcs.plain_stream("tei.EmbedAllStream", body, request_iterator, context):
            yield response
