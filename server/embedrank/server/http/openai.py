"""OpenAI's convention on the HTTP port: POST /v1/embeddings, GET /v1/models[/{name}].

    POST /v1/embeddings          {input, model, encoding_format, dimensions, user} + our extensions
                                 (also POST /embeddings, as TEI serves it)
    GET  /v1/models[/{name}]     {object: "list", data: [{id, object: "model", ...}]}

Errors in OpenAI's shape ({"error": {message, type, param, code}}, http/errors.py).
"""

from __future__ import annotations

import datetime
from typing import Any

from aiohttp import web

from embedrank.model.errors import Unavailable
from embedrank.model.kinds import ModelKind
from embedrank.server.engine.served import ServedModel
from embedrank.server.http import schemas
from embedrank.server.http.errors import EMBEDDINGS_FIELDS
from embedrank.server.http.serving import RequestState, Route, Serving

ROUTES: tuple[Route, ...] = (
    ("POST", "/v1/embeddings", "embeddings"),
    ("POST", "/embeddings", "embeddings"),  # TEI serves OpenAI's route under this name too
    ("GET", "/v1/models", "models"),
    ("GET", "/v1/models/{name}", "model"),
)


class Handlers:
    def __init__(self, serving: Serving) -> None:
        self._s = serving

    async def embeddings(self, request: web.Request) -> web.Response:
        async def work(req: web.Request, rid: str, state: RequestState) -> dict[str, Any]:
            body = await self._s.body(req)
            parsed = schemas.embeddings_request(body)
            state.scalar_input = parsed.scalar_input
            self._s.check_kind(parsed.model, ModelKind.EMBEDDING, ModelKind.HYBRID)
            model = self._s.engine.embedding(parsed.model)
            result = await model.encode(parsed.params, deadline=None, request_id=rid)
            return schemas.embeddings_response(result, encoding_format=parsed.encoding_format)

        return await self._s.serve(request, "HTTP /v1/embeddings", work, EMBEDDINGS_FIELDS)

    async def models(self, request: web.Request) -> web.Response:
        async def work(_req: web.Request, _rid: str, _state: RequestState) -> dict[str, Any]:
            engine = self._s.engine
            if not engine.ready:
                raise Unavailable("models are loading; retry shortly")
            return {"object": "list", "data": [_model_entry(m) for _, m in sorted(engine.models.items())]}

        return await self._s.serve(request, "HTTP /v1/models", work)

    async def model(self, request: web.Request) -> web.Response:
        async def work(req: web.Request, _rid: str, _state: RequestState) -> dict[str, Any]:
            return _model_entry(self._s.engine.get(req.match_info["name"]))

        return await self._s.serve(request, "HTTP /v1/models/{name}", work)


def _model_entry(model: ServedModel) -> dict[str, Any]:
    m = model.manifest
    entry: dict[str, Any] = {
        "id": m.name, "object": "model", "created": _created(m.raw.get("created")), "owned_by": "embedrank",
        "kind": m.kind.value, "version": m.version, "max_tokens": m.tokenizer.max_tokens,
    }
    dimensions = getattr(m.spec, "dimensions", None)  # the vector kinds' section has it
    if dimensions is not None:
        entry["dimensions"] = dimensions
    return entry


def _created(value: Any) -> int:
    """The export time (ISO 8601 in the manifest) as OpenAI's Unix seconds; 0 when unknown."""
    try:
        return int(datetime.datetime.fromisoformat(str(value)).timestamp())
    except ValueError:
        return 0
