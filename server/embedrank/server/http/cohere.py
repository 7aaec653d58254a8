"""Cohere's convention on the HTTP port: embed (v1, v2) and rerank (v1, v2; Jina's rerank is the same shape).

    POST /v2/embed   {texts | inputs, model, input_type, embedding_types, truncate, output_dimension, max_tokens}
                     -> {id, embeddings: {float: [...], int8: [...], ...}, texts, meta, response_type}
    POST /v1/embed   {texts, model, input_type, embedding_types, truncate}
                     -> {id, embeddings: [[...]], texts, meta, response_type: "embeddings_floats"}
                        (by type, as v2, when embedding_types is sent)
    POST /v1/rerank, /v2/rerank  {query, documents, top_n, return_documents} -> {id, results, meta}

Every embedding type of one request comes from one forward pass (``EmbeddingModel.encode_as``): the
int8/uint8/binary/ubinary rows are exactly what Encode answers for that precision. ``input_type`` picks
the model's prompt:

    search_query     the prompt "query" (InputType.QUERY, as Encode's INPUT_TYPE_QUERY)
    search_document  the first of "document", "passage", "corpus" (InputType.DOCUMENT)
    classification   the prompt named "classification" when the model has one,
    clustering       the prompt named "clustering" when the model has one;
                     otherwise, and when input_type is left out: the model's default prompt (if any)
    image            refused: this server embeds text

Errors have Cohere's shape, ``{"id": <request id>, "message": "<field>: <what is wrong>"}``, with the
HTTP status from the one status table (the SDK raises its error class for the status and keeps the body).
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from embedrank.model.errors import FailedPrecondition, InvalidArgument
from embedrank.model.kinds import ModelKind
from embedrank.model.tokenize import Truncate
from embedrank.server.engine.embedding import EmbeddingModel
from embedrank.server.engine.hybrid import HybridModel
from embedrank.server.engine.postprocess import OutputPrecision
from embedrank.server.engine.requests import EncodeParams, InputType, Usage
from aiohttp import web

from embedrank.server.http import schemas
from embedrank.server.http.errors import RERANK_FIELDS, Answer, error_answer
from embedrank.server.http.schemas import _int, _kind, _str
from embedrank.server.http.serving import RequestState, Route, Serving

# Cohere's embedding_types -> the precision each is computed in ("base64" = the float32 rows' bytes).
EMBEDDING_TYPES = {
    "float": OutputPrecision.FLOAT32, "int8": OutputPrecision.INT8, "uint8": OutputPrecision.UINT8,
    "binary": OutputPrecision.BINARY, "ubinary": OutputPrecision.UBINARY, "base64": OutputPrecision.FLOAT32,
}
INPUT_TYPES = ("search_query", "search_document", "classification", "clustering")
_TRUNCATE = {"NONE": Truncate.NONE, "START": Truncate.START, "END": Truncate.END}
_ROUTE_FOR_KIND = {ModelKind.EMBEDDING: "POST /v2/embed", ModelKind.RERANK: "POST /v2/rerank",
                   ModelKind.MULTI_VECTOR: "POST /v2/rerank", ModelKind.HYBRID: "POST /v1/hybrid"}
EMBED_FIELDS = {"dimensions": "output_dimension"}  # the engine's field -> Cohere's
_REFUSED = {
    "images": "this server embeds text only: send texts",
}


ROUTES: tuple[Route, ...] = (
    ("POST", "/v1/embed", "embed_v1"),
    ("POST", "/v2/embed", "embed_v2"),
    ("POST", "/v1/rerank", "rerank_v1"),
    ("POST", "/v2/rerank", "rerank_v2"),
)


def cohere_error(exc: BaseException, rid: str, state: RequestState) -> Answer:
    """The table's status and headers; Cohere's body: the request id and the message (naming the field)."""
    answer = error_answer(exc, rid, renames=state.renames)
    error = answer.body["error"]  # OpenAI's shape: its message names the field as the request did
    assert isinstance(error, dict)
    answer.body = {"id": rid, "message": error["message"]}
    return answer


# -- embed -----------------------------------------------------------------------------------------


def _texts(body: dict[str, Any], *, version: str) -> list[str]:
    for name, why in _REFUSED.items():
        if body.get(name) not in (None, []):
            raise InvalidArgument(name, why)
    raw, inputs = body.get("texts"), body.get("inputs") if version == "2" else None
    if version == "2" and "texts" in body and "inputs" in body:
        raise InvalidArgument("texts", "send either texts or inputs, not both")
    if inputs is not None:
        return _input_texts(inputs)
    if raw is None:
        raise InvalidArgument("texts", "is required: a list of strings" + (" (or send inputs)" if version == "2" else ""))
    if not isinstance(raw, list):
        raise InvalidArgument("texts", f"must be a list of strings, got {_kind(raw)}")
    for i, item in enumerate(raw):
        if not isinstance(item, str):
            raise InvalidArgument(f"texts[{i}]", f"must be a string, got {_kind(item)}")
    return raw


def _input_texts(inputs: Any) -> list[str]:
    """v2's ``inputs``: [{"content": [{"type": "text", "text": ...}, ...]}, ...]; an input's text parts
    are joined with a space into one text (images are refused)."""
    if not isinstance(inputs, list):
        raise InvalidArgument("inputs", f"must be a list of {{\"content\": [...]}} objects, got {_kind(inputs)}")
    texts = []
    for i, item in enumerate(inputs):
        content = item.get("content") if isinstance(item, dict) else None
        if not isinstance(content, list) or not content:
            raise InvalidArgument(f"inputs[{i}].content", "is required: a non-empty list of {\"type\": \"text\", \"text\": ...}")
        parts = []
        for j, part in enumerate(content):
            where = f"inputs[{i}].content[{j}]"
            if not isinstance(part, dict) or part.get("type") != "text":
                kind = part.get("type") if isinstance(part, dict) else None
                raise InvalidArgument(where, f"type {kind!r} is not served: this server embeds text only"
                                      if kind == "image_url" else "must be {\"type\": \"text\", \"text\": ...}")
            text = part.get("text")
            if not isinstance(text, str):
                raise InvalidArgument(f"{where}.text", f"must be a string, got {_kind(text)}")
            parts.append(text)
        texts.append(" ".join(parts))
    return texts


def _embedding_types(body: dict[str, Any]) -> list[str] | None:
    raw = body.get("embedding_types")
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw:
        raise InvalidArgument("embedding_types", f"must be a non-empty list of {', '.join(EMBEDDING_TYPES)}")
    for i, item in enumerate(raw):
        if not isinstance(item, str) or item not in EMBEDDING_TYPES:
            raise InvalidArgument(f"embedding_types[{i}]", f"{item!r} is not one of {', '.join(EMBEDDING_TYPES)}")
    return list(dict.fromkeys(raw))  # each once, in the order asked


def _prompt(input_type: str, prompts: dict[str, str]) -> tuple[InputType, str]:
    """(input type, prompt name) for Encode, from Cohere's input_type (see the module's docstring)."""
    if input_type == "search_query":
        return InputType.QUERY, ""
    if input_type == "search_document":
        return InputType.DOCUMENT, ""
    if input_type in prompts:  # classification, clustering
        return InputType.DEFAULT, input_type
    return InputType.DEFAULT, ""


def _truncate(body: dict[str, Any]) -> Truncate:
    value = _str(body, "truncate", "END")
    if value.upper() not in _TRUNCATE:
        raise InvalidArgument("truncate", f"{value!r} is not one of NONE, START, END")
    return _TRUNCATE[value.upper()]


def _meta(usage: Usage, version: str) -> dict[str, Any]:
    return {"api_version": {"version": version}, "billed_units": {"input_tokens": usage.tokens},
            "tokens": {"input_tokens": usage.tokens, "output_tokens": 0}}


def _by_type(types: list[str], rows: dict[OutputPrecision, np.ndarray]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in types:
        matrix = rows[EMBEDDING_TYPES[name]]
        if name == "base64":
            little = np.ascontiguousarray(matrix, dtype="<f4")
            out[name] = [base64.b64encode(row.tobytes()).decode("ascii") for row in little]
        else:  # numpy rows: the JSON encoder writes each float32 as its shortest text, integers as integers
            out[name] = list(matrix)
    return out


@dataclasses.dataclass(frozen=True)
class EmbedRequest:
    model: str
    texts: list[str]
    types: list[str] | None  # None: not sent
    input_type: str  # lower case, "" when not sent
    dimensions: int
    truncate: Truncate
    max_tokens: int | None
    priority: int | None  # checked, then ignored (one queue)


def embed_request(body: dict[str, Any], *, version: str) -> EmbedRequest:
    """The body checked field by field (what needs the model, the prompts and max_tokens, is checked in ``embed``)."""
    texts = _texts(body, version=version)
    input_type = _str(body, "input_type").lower()
    if input_type == "image":
        raise InvalidArgument("input_type", "'image' is not served: this server embeds text only")
    if input_type and input_type not in INPUT_TYPES:
        raise InvalidArgument("input_type", f"{input_type!r} is not one of {', '.join(INPUT_TYPES)}")
    return EmbedRequest(
        model=_str(body, "model"), texts=texts, types=_embedding_types(body), input_type=input_type,
        dimensions=_int(body, "output_dimension", minimum=1) or 0, truncate=_truncate(body),
        max_tokens=_int(body, "max_tokens", minimum=1) if version == "2" else None,
        priority=_int(body, "priority", minimum=0) if version == "2" else None,
    )


async def _embed(s: Serving, body: dict[str, Any], rid: str, version: str) -> dict[str, Any]:
    parsed = embed_request(body, version=version)
    s.check_kind(parsed.model, ModelKind.EMBEDDING, routes=_ROUTE_FOR_KIND)
    model = s.engine.embedding(parsed.model)
    if not isinstance(model, EmbeddingModel):  # the only embedding-capable model, unnamed, is a hybrid one
        raise FailedPrecondition(f"model {model.name!r} is a {model.manifest.kind.value} model; call "
                                 f"{_ROUTE_FOR_KIND[model.manifest.kind]} for it")
    limit = model.manifest.tokenizer.max_tokens
    if parsed.max_tokens is not None and parsed.max_tokens < limit:
        raise InvalidArgument("max_tokens", f"{parsed.max_tokens} is below the model's {limit} tokens: a shorter "
                                            "cut is not served; leave max_tokens out")
    input_type, prompt_name = _prompt(parsed.input_type, model.spec.prompts)
    params = EncodeParams(texts=parsed.texts, input_type=input_type, prompt_name=prompt_name,
                          dimensions=parsed.dimensions, truncate=parsed.truncate)
    types = parsed.types or ["float"]
    precisions = list(dict.fromkeys(EMBEDDING_TYPES[t] for t in types))
    result, rows = await model.encode_as(params, precisions, deadline=None, request_id=rid)
    answer: dict[str, Any] = {"id": rid, "texts": parsed.texts, "meta": _meta(result.usage, version)}
    if parsed.types is None and version == "1":
        answer.update(response_type="embeddings_floats", embeddings=list(rows[OutputPrecision.FLOAT32]))
    else:
        answer.update(response_type="embeddings_by_type", embeddings=_by_type(types, rows))
    return answer


# -- rerank ----------------------------------------------------------------------------------------


async def _rerank(s: Serving, body: dict[str, Any], rid: str, version: str) -> dict[str, Any]:
    parsed = schemas.rerank_request(body)
    s.check_kind(parsed.model, ModelKind.RERANK, ModelKind.MULTI_VECTOR, ModelKind.HYBRID, routes=_ROUTE_FOR_KIND)
    model = s.engine.reranker(parsed.model)
    if parsed.params.hybrid_options and not isinstance(model, HybridModel):
        raise InvalidArgument(parsed.params.hybrid_options[0], f"is for hybrid (BGE-M3) models; {model.name} is "
                              f"a {model.manifest.kind.value} model: leave it out")
    result = await model.rerank(parsed.params, deadline=None, request_id=rid)
    return schemas.rerank_response(result, api_version=version)


Work = Callable[[Serving, dict[str, Any], str, str], Awaitable[dict[str, Any]]]


class Handlers:
    ERROR_SHAPE = staticmethod(cohere_error)  # the doors' refusals before a body, in Cohere's shape too

    def __init__(self, serving: Serving) -> None:
        self._s = serving

    async def _serve(self, request: web.Request, path: str, work: Work, version: str,
                     renames: dict[str, str]) -> web.Response:
        async def run(req: web.Request, rid: str, _state: RequestState) -> dict[str, Any]:
            return await work(self._s, await self._s.body(req), rid, version)

        return await self._s.serve(request, f"HTTP {path}", run, renames, shape=cohere_error)

    async def embed_v1(self, request: web.Request) -> web.Response:
        return await self._serve(request, "/v1/embed", _embed, "1", EMBED_FIELDS)

    async def embed_v2(self, request: web.Request) -> web.Response:
        return await self._serve(request, "/v2/embed", _embed, "2", EMBED_FIELDS)

    async def rerank_v1(self, request: web.Request) -> web.Response:
        return await self._serve(request, "/v1/rerank", _rerank, "1", RERANK_FIELDS)

    async def rerank_v2(self, request: web.Request) -> web.Response:
        return await self._serve(request, "/v2/rerank", _rerank, "2", RERANK_FIELDS)
