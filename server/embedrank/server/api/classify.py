"""embedrank.v1.Classify: Classify and ClassifyStream."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

import grpc

from embedrank.server.api import convert
from embedrank.server.api.rpc import Rpcs
from embedrank.server.engine.classification import ClassifyParams, ClassifyResult
from embedrank.server.engine.engine import Engine
from embedrank.v1 import classify_pb2, classify_pb2_grpc


def classify_params(req: classify_pb2.ClassifyRequest) -> ClassifyParams:
    return ClassifyParams(
        texts=list(req.texts),
        pairs=[(p.first, p.second) for p in req.pairs],
        top_k=req.top_k if req.HasField("top_k") else None,
        scores=convert._enum(convert._SCORES, req.scores, "scores"),  # type: ignore[arg-type]
        truncate=convert._enum(convert._TRUNCATION, req.truncation, "truncation"),  # type: ignore[arg-type]
    )


def classify_response(result: ClassifyResult) -> classify_pb2.ClassifyResponse:
    return classify_pb2.ClassifyResponse(
        results=[
            classify_pb2.Classification(
                labels=[classify_pb2.LabelScore(index=s.index, label=s.label, score=s.score) for s in c.labels],
                truncated=c.truncated,
                token_count=c.token_count,
            )
            for c in result.results
        ],
        metadata=convert.metadata(result.usage),
    )


class ClassifyServicer(classify_pb2_grpc.ClassifyServicer):
    def __init__(self, engine: Engine, rpcs: Rpcs) -> None:
        self._engine = engine
        self._rpcs = rpcs

    async def _classify(
        self, request: classify_pb2.ClassifyRequest, deadline: float | None, request_id: str
    ) -> classify_pb2.ClassifyResponse:
        model = self._engine.classifier(request.model)
        result = await model.classify(classify_params(request), deadline=deadline, request_id=request_id)
        return classify_response(result)

    async def Classify(  # noqa: N802 (gRPC method name)
        self, request: classify_pb2.ClassifyRequest, context: grpc.aio.ServicerContext
    ) -> classify_pb2.ClassifyResponse:
        return await self._rpcs.unary("Classify", self._classify, request, context)

    async def ClassifyStream(  # noqa: N802
        self, request_iterator: AsyncIterable[classify_pb2.ClassifyStreamRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[classify_pb2.ClassifyStreamResponse]:
        async for response in self._rpcs.stream(
            "ClassifyStream", self._classify, request_iterator, context, classify_pb2.ClassifyStreamResponse
        ):
            yield response
