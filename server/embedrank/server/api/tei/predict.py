"""tei.v1.Predict: Predict, PredictPair and their ...Stream twins, over the engine call of
embedrank.v1's Classify (one text, or one pair, per message; every label, highest score first)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterable, AsyncIterator

import grpc

from embedrank.model.errors import InvalidArgument
from embedrank.server.api.rpc import Rpcs
from embedrank.server.api.tei.common import ONE_INPUT, fields, metadata, model_name, scores, truncation
from embedrank.server.engine.classification import ClassifyParams
from embedrank.server.engine.engine import Engine
from embedrank.tei.v1 import tei_pb2, tei_pb2_grpc

# The engine's field names -> PredictPairRequest's.
_PAIR = {"pairs[0].first": "inputs[0]", "pairs[0].second": "inputs[1]", "pairs": "inputs", **ONE_INPUT}


class TeiPredictServicer(tei_pb2_grpc.PredictServicer):
    def __init__(self, engine: Engine, rpcs: Rpcs) -> None:
        self._engine = engine
        self._rpcs = rpcs

    async def _classify(
        self, name: str, request: tei_pb2.PredictRequest | tei_pb2.PredictPairRequest, deadline: float | None,
        request_id: str,
    ) -> tei_pb2.PredictResponse:
        model = self._engine.classifier(name)
        texts: list[str] = []
        pairs: list[tuple[str, str]] = []
        if isinstance(request, tei_pb2.PredictRequest):
            texts = [request.inputs]
        elif len(request.inputs) == 1:
            texts = list(request.inputs)
        elif len(request.inputs) == 2:
            pairs = [(request.inputs[0], request.inputs[1])]
        else:
            raise InvalidArgument("inputs", f"must hold one text or two (a pair), not {len(request.inputs)}")
        params = ClassifyParams(
            texts=texts, pairs=pairs, scores=scores(request.raw_scores),
            truncate=truncation(request.truncate, request.truncation_direction),
        )
        with fields(_PAIR):
            result = await model.classify(params, deadline=deadline, request_id=request_id)
        return tei_pb2.PredictResponse(
            predictions=[tei_pb2.Prediction(score=s.score, label=s.label) for s in result.results[0].labels],
            metadata=metadata(result.usage),
        )

    async def Predict(  # noqa: N802 (gRPC method name)
        self, request: tei_pb2.PredictRequest, context: grpc.aio.ServicerContext
    ) -> tei_pb2.PredictResponse:
        body = functools.partial(self._classify, model_name(context))
        return await self._rpcs.unary("tei.Predict", body, request, context)

    async def PredictPair(  # noqa: N802
        self, request: tei_pb2.PredictPairRequest, context: grpc.aio.ServicerContext
    ) -> tei_pb2.PredictResponse:
        body = functools.partial(self._classify, model_name(context))
        return await self._rpcs.unary("tei.PredictPair", body, request, context)

    async def PredictStream(  # noqa: N802
        self, request_iterator: AsyncIterable[tei_pb2.PredictRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[tei_pb2.PredictResponse]:
        body = functools.partial(self._classify, model_name(context))
        async for response in self._rpcs.plain_stream("tei.PredictStream", body, request_iterator, context):
            yield response

    async def PredictPairStream(  # noqa: N802
        self, request_iterator: AsyncIterable[tei_pb2.PredictPairRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[tei_pb2.PredictResponse]:
        body = functools.partial(self._classify, model_name(context))
        async for response in self._rpcs.plain_stream("tei.PredictPairStream", body, request_iterator, context):
            yield response
