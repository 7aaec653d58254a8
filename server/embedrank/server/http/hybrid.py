"""POST /v1/hybrid (ours): a hybrid (BGE-M3) model's dense vectors, lexical weights and ColBERT vectors
of the inputs from one model run, as EncodeHybrid returns them on gRPC.

    {"model": "bge-m3", "input": ["a text", ...], "outputs": ["dense", "sparse", "multi_vector"],
     "sparse_top_k": 64, "return_tokens": false, "input_type": "query", "prompt_name": "", "truncation": "end"}
    -> {"object": "list", "model": ..., "data": [{"object": "hybrid_embedding", "index": 0, "token_count": 7,
        "dense": [...], "sparse": {"indices": [...], "values": [...], "tokens": [...]},
        "multi_vector": [[...], ...]}], "usage": {"prompt_tokens": ..., "total_tokens": ...}}
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from embedrank.model.errors import InvalidArgument
from embedrank.model.kinds import ModelKind
from embedrank.server.engine.hybrid import HybridOutput, HybridParams, HybridResult
from embedrank.server.http import schemas
from embedrank.server.http.serving import RequestState, Route, Serving

ROUTES: tuple[Route, ...] = (("POST", "/v1/hybrid", "hybrid"),)

_OUTPUTS = {o.value: o for o in HybridOutput}
FIELDS = {"texts": "input"}  # the engine's field names -> this route's


def hybrid_request(body: dict[str, Any]) -> tuple[str, HybridParams]:
    """(model, params) from the body; InvalidArgument naming the field as the caller wrote it."""
    texts, _ = schemas.texts_of(body, "input")
    outputs = body.get("outputs")
    chosen: set[HybridOutput] = set()
    if outputs is not None:
        if not isinstance(outputs, list) or not outputs:
            raise InvalidArgument("outputs", f"must be a non-empty list of {sorted(_OUTPUTS)}; leave it out for all")
        for i, name in enumerate(outputs):
            if not isinstance(name, str) or name not in _OUTPUTS:  # {} is unhashable: a 500 (Schemathesis)
                raise InvalidArgument(f"outputs[{i}]", f"{name!r} is not one of {sorted(_OUTPUTS)}")
            chosen.add(_OUTPUTS[name])
    params = HybridParams(
        texts=texts,
        input_type=schemas.input_type(body),
        prompt_name=schemas.string(body, "prompt_name"),
        truncate=schemas.truncation(body),
        outputs=frozenset(chosen) if chosen else frozenset(HybridOutput),
        sparse_top_k=schemas.integer(body, "sparse_top_k", minimum=0),
        return_tokens=bool(schemas.boolean(body, "return_tokens", False)),
    )
    return schemas.string(body, "model"), params


def hybrid_response(result: HybridResult, *, return_tokens: bool) -> dict[str, Any]:
    data: list[dict[str, Any]] = []
    for i, count in enumerate(result.token_counts):
        item: dict[str, Any] = {"object": "hybrid_embedding", "index": i, "token_count": count}
        if result.dense is not None:
            item["dense"] = result.dense[i]
        if result.sparse is not None:
            v = result.sparse[i]
            item["sparse"] = {"indices": v.indices, "values": v.values, **({"tokens": v.tokens} if return_tokens else {})}
        if result.multi_vector is not None:
            item["multi_vector"] = result.multi_vector[i]
        data.append(item)
    usage = result.usage
    return {"object": "list", "data": data, "model": usage.model, "sparse_dimensions": result.sparse_dimensions,
            "usage": {"prompt_tokens": usage.tokens, "total_tokens": usage.tokens}}


class Handlers:
    def __init__(self, serving: Serving) -> None:
        self._s = serving

    async def hybrid(self, request: web.Request) -> web.Response:
        async def work(req: web.Request, rid: str, _state: RequestState) -> dict[str, Any]:
            name, params = hybrid_request(await self._s.body(req))
            self._s.check_kind(name, ModelKind.HYBRID)
            result = await self._s.engine.hybrid(name).encode_hybrid(params, deadline=None, request_id=rid)
            return hybrid_response(result, return_tokens=params.return_tokens)

        return await self._s.serve(request, "HTTP /v1/hybrid", work, FIELDS)
