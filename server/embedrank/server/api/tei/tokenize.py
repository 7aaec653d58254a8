"""tei.v1.Tokenize (Tokenize, Decode and their ...Stream twins) and tei.v1.Info, for the model a
call names or the one the engine picks for it (--default-model, else the only model)."""

from __future__ import annotations

import functools
import itertools
from collections.abc import AsyncIterable, AsyncIterator

import grpc

from embedrank.model.kinds import ModelKind
from embedrank.model.tokenize import Truncate
from embedrank.server.api.rpc import Rpcs
from embedrank.server.api.tei.common import ONE_INPUT, fields, model_name, server_version, tei_dtype
from embedrank.server.engine.engine import TOKENIZE_THREADS, Engine
from embedrank.server.engine.tokens import TokenizedInput, TokenizeParams
from embedrank.tei.v1 import tei_pb2, tei_pb2_grpc

_MODEL_TYPE = {
    ModelKind.CLASSIFICATION: tei_pb2.MODEL_TYPE_CLASSIFIER,
    ModelKind.RERANK: tei_pb2.MODEL_TYPE_RERANKER,
}  # every other kind gives vectors: MODEL_TYPE_EMBEDDING


def simple_tokens(item: TokenizedInput, text: str, *, add_special_tokens: bool) -> list[tei_pb2.SimpleToken]:
    """TEI's tokens: offsets are UTF-8 bytes of the prompt followed by the text, and a token's text is
    that slice; special tokens have no offsets and their own text."""
    full = item.prompt + text
    byte_at = [0, *itertools.accumulate(len(c.encode()) for c in full)]
    out = []
    for t in item.tokens:
        if t.special:
            if add_special_tokens:
                out.append(tei_pb2.SimpleToken(id=t.id, text=t.text, special=True))
            continue
        start, end = (t.start, t.end) if t.prompt else (t.start + len(item.prompt), t.end + len(item.prompt))
        out.append(tei_pb2.SimpleToken(id=t.id, text=full[start:end], special=False, start=byte_at[start],
                                       stop=byte_at[end]))
    return out


class TeiTokenizeServicer(tei_pb2_grpc.TokenizeServicer):
    def __init__(self, engine: Engine, rpcs: Rpcs) -> None:
        self._engine = engine
        self._rpcs = rpcs

    async def _tokenize(
        self, name: str, request: tei_pb2.EncodeRequest, deadline: float | None, request_id: str
    ) -> tei_pb2.EncodeResponse:
        model = self._engine.any_model(name)
        # Every token, as TEI lists them: none is cut (Truncate.NONE only flags an over-long input).
        params = TokenizeParams(texts=[request.inputs], prompt_name=request.prompt_name, truncate=Truncate.NONE)
        with fields(ONE_INPUT):
            result = await model.tokenize(params, request_id=request_id)
        return tei_pb2.EncodeResponse(
            tokens=simple_tokens(result.inputs[0], request.inputs, add_special_tokens=request.add_special_tokens)
        )

    async def _decode(
        self, name: str, request: tei_pb2.DecodeRequest, deadline: float | None, request_id: str
    ) -> tei_pb2.DecodeResponse:
        model = self._engine.any_model(name)
        result = await model.decode(list(request.ids), skip_special_tokens=request.skip_special_tokens,
                                    request_id=request_id)
        return tei_pb2.DecodeResponse(text=result.text)

    async def Tokenize(  # noqa: N802 (gRPC method name)
        self, request: tei_pb2.EncodeRequest, context: grpc.aio.ServicerContext
    ) -> tei_pb2.EncodeResponse:
        body = functools.partial(self._tokenize, model_name(context))
        return await self._rpcs.unary("tei.Tokenize", body, request, context)

    async def TokenizeStream(  # noqa: N802
        self, request_iterator: AsyncIterable[tei_pb2.EncodeRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[tei_pb2.EncodeResponse]:
        body = functools.partial(self._tokenize, model_name(context))
        async for response in self._rpcs.plain_stream("tei.TokenizeStream", body, request_iterator, context):
            yield response

    async def Decode(  # noqa: N802
        self, request: tei_pb2.DecodeRequest, context: grpc.aio.ServicerContext
    ) -> tei_pb2.DecodeResponse:
        return await self._rpcs.unary("tei.Decode", functools.partial(self._decode, model_name(context)), request, context)

    async def DecodeStream(  # noqa: N802
        self, request_iterator: AsyncIterable[tei_pb2.DecodeRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[tei_pb2.DecodeResponse]:
        body = functools.partial(self._decode, model_name(context))
        async for response in self._rpcs.plain_stream("tei.DecodeStream", body, request_iterator, context):
            yield response


class TeiInfoServicer(tei_pb2_grpc.InfoServicer):
    def __init__(self, engine: Engine, rpcs: Rpcs) -> None:
        self._engine = engine
        self._rpcs = rpcs

    async def _info(
        self, name: str, request: tei_pb2.InfoRequest, deadline: float | None, request_id: str
    ) -> tei_pb2.InfoResponse:
        model = self._engine.any_model(name)
        settings = self._engine.settings
        m = model.manifest
        return tei_pb2.InfoResponse(
            version=server_version(),
            model_id=model.name,
            model_dtype=tei_dtype(m.graph.precision),
            model_type=_MODEL_TYPE.get(m.kind, tei_pb2.MODEL_TYPE_EMBEDDING),
            max_concurrent_requests=settings.max_inflight_inputs,
            max_input_length=m.tokenizer.max_tokens,
            max_batch_tokens=settings.limits.batch.max_batch_tokens,
            max_batch_requests=settings.limits.batch.max_batch_size,
            max_client_batch_size=settings.limits.max_inputs,
            tokenization_workers=TOKENIZE_THREADS,
        )

    async def Info(  # noqa: N802 (gRPC method name)
        self, request: tei_pb2.InfoRequest, context: grpc.aio.ServicerContext
    ) -> tei_pb2.InfoResponse:
        return await self._rpcs.unary("tei.Info", functools.partial(self._info, model_name(context)), request, context)
