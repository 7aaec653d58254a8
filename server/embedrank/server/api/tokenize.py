"""embedrank.v1.Tokenize: Tokenize, Decode and their ...Stream twins, for a model of any kind."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

import grpc

from embedrank.server.api import convert
from embedrank.server.api.rpc import Rpcs
from embedrank.server.engine.engine import Engine
from embedrank.server.engine.tokens import TokenizeParams, TokenizeResult
from embedrank.v1 import common_pb2, tokenize_pb2, tokenize_pb2_grpc


def tokenize_params(req: tokenize_pb2.TokenizeRequest) -> TokenizeParams:
    return TokenizeParams(
        texts=list(req.texts),
        pairs=[(p.first, p.second) for p in req.pairs],
        input_type=convert._enum(convert._INPUT_TYPE, req.input_type, "input_type"),  # type: ignore[arg-type]
        prompt_name=req.prompt_name,
        truncate=convert._enum(convert._TRUNCATION, req.truncation, "truncation"),  # type: ignore[arg-type]
    )


def tokenize_response(result: TokenizeResult) -> tokenize_pb2.TokenizeResponse:
    return tokenize_pb2.TokenizeResponse(
        inputs=[
            tokenize_pb2.TokenizedInput(
                tokens=[
                    tokenize_pb2.Token(
                        id=t.id, text=t.text, span=common_pb2.Span(start=t.start, end=t.end), special=t.special,
                        prompt=t.prompt, sequence=t.sequence,
                    )
                    for t in item.tokens
                ],
                token_count=item.token_count,
                truncated=item.truncated,
                prompt=item.prompt,
            )
            for item in result.inputs
        ],
        max_tokens=result.max_tokens,
        metadata=convert.metadata(result.usage),
    )


class TokenizeServicer(tokenize_pb2_grpc.TokenizeServicer):
    def __init__(self, engine: Engine, rpcs: Rpcs) -> None:
        self._engine = engine
        self._rpcs = rpcs

    async def _tokenize(
        self, request: tokenize_pb2.TokenizeRequest, deadline: float | None, request_id: str
    ) -> tokenize_pb2.TokenizeResponse:
        model = self._engine.any_model(request.model)
        return tokenize_response(await model.tokenize(tokenize_params(request), request_id=request_id))

    async def _decode(
        self, request: tokenize_pb2.DecodeRequest, deadline: float | None, request_id: str
    ) -> tokenize_pb2.DecodeResponse:
        model = self._engine.any_model(request.model)
        result = await model.decode(list(request.ids), skip_special_tokens=request.skip_special_tokens,
                                    request_id=request_id)
        return tokenize_pb2.DecodeResponse(text=result.text, metadata=convert.metadata(result.usage))

    async def Tokenize(  # noqa: N802 (gRPC method name)
        self, request: tokenize_pb2.TokenizeRequest, context: grpc.aio.ServicerContext
    ) -> tokenize_pb2.TokenizeResponse:
        return await self._rpcs.unary("Tokenize", self._tokenize, request, context)

    async def TokenizeStream(  # noqa: N802
        self, request_iterator: AsyncIterable[tokenize_pb2.TokenizeStreamRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[tokenize_pb2.TokenizeStreamResponse]:
        async for response in self._rpcs.stream(
            "TokenizeStream", self._tokenize, request_iterator, context, tokenize_pb2.TokenizeStreamResponse
        ):
            yield response

    async def Decode(  # noqa: N802
        self, request: tokenize_pb2.DecodeRequest, context: grpc.aio.ServicerContext
    ) -> tokenize_pb2.DecodeResponse:
        return await self._rpcs.unary("Decode", self._decode, request, context)

    async def DecodeStream(  # noqa: N802
        self, request_iterator: AsyncIterable[tokenize_pb2.DecodeStreamRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[tokenize_pb2.DecodeStreamResponse]:
        async for response in self._rpcs.stream(
            "DecodeStream", self._decode, request_iterator, context, tokenize_pb2.DecodeStreamResponse
        ):
            yield response
