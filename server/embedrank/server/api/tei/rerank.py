"""tei.v1.Rerank: Rerank, and RerankStream (one (query, text) per message in, one answer for the
whole stream out), over the engine call of embedrank.v1's Rerank."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterable

import grpc

from embedrank.model.errors import InvalidArgument
from embedrank.model.tokenize import Truncate
from embedrank.server.api.rpc import Rpcs
from embedrank.server.api.tei.common import fields, metadata, model_name, scores, truncation
from embedrank.server.engine.engine import Engine
from embedrank.server.engine.requests import Ranked, RerankParams, Timing, Usage
from embedrank.tei.v1 import tei_pb2, tei_pb2_grpc

_TEXTS = {"documents": "texts"}


def _ranks(ranked: list[Ranked], texts: list[str] | None = None) -> list[tei_pb2.Rank]:
    """Highest score first; ``texts`` (return_text) by the ranks' own indices."""
    return [
        tei_pb2.Rank(index=r.index, score=r.score, text=None if texts is None else texts[r.index])
        for r in sorted(ranked, key=lambda r: -r.score)
    ]


def _summed(usages: list[Usage]) -> Usage:
    """One stream's Metadata from its groups' calls (run at once: the longest of each time)."""
    first = usages[0]
    return Usage(
        request_id=first.request_id, model=first.model, version=first.version,
        chars=sum(u.chars for u in usages), tokens=sum(u.tokens for u in usages),
        timing=Timing(*(max(getattr(u.timing, f) for u in usages)
                        for f in ("tokenize_ns", "queue_ns", "inference_ns", "total_ns"))),
    )


class TeiRerankServicer(tei_pb2_grpc.RerankServicer):
    def __init__(self, engine: Engine, rpcs: Rpcs) -> None:
        self._engine = engine
        self._rpcs = rpcs

    async def _rerank(
        self, name: str, request: tei_pb2.RerankRequest, deadline: float | None, request_id: str
    ) -> tei_pb2.RerankResponse:
        model = self._engine.reranker(name)
        params = RerankParams(
            query=request.query, documents=list(request.texts), scores=scores(request.raw_scores),
            truncate=truncation(request.truncate, request.truncation_direction),
        )
        with fields(_TEXTS):
            result = await model.rerank(params, deadline=deadline, request_id=request_id)
        texts = list(request.texts) if request.return_text else None
        return tei_pb2.RerankResponse(ranks=_ranks(result.results, texts), metadata=metadata(result.usage))

    async def _rerank_stream(
        self, name: str, requests: AsyncIterable[tei_pb2.RerankStreamRequest], deadline: float | None, request_id: str
    ) -> tei_pb2.RerankResponse:
        """Every message read, then one engine call per distinct (query, truncation) at once;
        raw_scores and return_text come from the first message, as in TEI."""
        model = self._engine.reranker(name)
        groups: dict[tuple[str, Truncate], list[int]] = {}
        texts: list[str] = []
        first: tei_pb2.RerankStreamRequest | None = None
        async for message in requests:
            first = first or message
            key = (message.query, truncation(message.truncate, message.truncation_direction))
            groups.setdefault(key, []).append(len(texts))
            texts.append(message.text)
            if len(texts) > model.limits.max_inputs:
                raise InvalidArgument("text", f"the stream sent over {model.limits.max_inputs} messages, the limit of "
                                              "one request (--max-inputs-per-request); split it")
        if first is None:
            raise InvalidArgument("text", "the stream sent no message; send one (query, text) per message")
        with fields(_TEXTS):
            results = await asyncio.gather(*(
                model.rerank(
                    RerankParams(query=query, documents=[texts[i] for i in where], scores=scores(first.raw_scores),
                                 truncate=cut),
                    deadline=deadline, request_id=request_id,
                )
                for (query, cut), where in groups.items()
            ))
        ranked = [
            Ranked(index=where[r.index], score=r.score, label_scores=[], truncated=r.truncated,
                   token_count=r.token_count, document=None)
            for where, result in zip(groups.values(), results)
            for r in result.results
        ]
        return tei_pb2.RerankResponse(
            ranks=_ranks(ranked, texts if first.return_text else None),
            metadata=metadata(_summed([r.usage for r in results])),
        )

    async def Rerank(  # noqa: N802 (gRPC method name)
        self, request: tei_pb2.RerankRequest, context: grpc.aio.ServicerContext
    ) -> tei_pb2.RerankResponse:
        body = functools.partial(self._rerank, model_name(context))
        return await self._rpcs.unary("tei.Rerank", body, request, context)

    async def RerankStream(  # noqa: N802
        self, request_iterator: AsyncIterable[tei_pb2.RerankStreamRequest], context: grpc.aio.ServicerContext
    ) -> tei_pb2.RerankResponse:
        # A client stream with one answer: a unary call whose request is the stream.
        body = functools.partial(self._rerank_stream, model_name(context))
        return await self._rpcs.unary("tei.RerankStream", body, request_iterator, context)
