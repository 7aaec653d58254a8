"""HTTP JSON bodies <-> the engine's dataclasses (what server/api/convert.py does for protos).

Requests are checked field by field: a wrong type or value is an InvalidArgument naming the field
as the caller wrote it. Fields a convention defines and we do not use (OpenAI's ``user``, Cohere's
``rank_fields`` or ``max_tokens_per_doc``) are ignored, as the conventions' own servers do.
"""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

import numpy as np

from embedrank.server.engine.requests import (
    EncodeParams, EncodeResult, InputType, LongInput, RerankParams, RerankResult, ScoreMode,
)
from embedrank.model.kinds.hybrid import HybridScore
from embedrank.model.tokenize import Truncate
from embedrank.model.errors import InvalidArgument

_INPUT_TYPE = {"query": InputType.QUERY, "document": InputType.DOCUMENT,
               # Cohere's names for the same two.
               "search_query": InputType.QUERY, "search_document": InputType.DOCUMENT}
_TRUNCATION = {"end": Truncate.END, "start": Truncate.START, "none": Truncate.NONE,
               # TEI's boolean `truncate` and Cohere's END / START / NONE spellings.
               True: Truncate.END, False: Truncate.NONE}
_LONG_INPUT = {"truncate": LongInput.TRUNCATE, "chunk": LongInput.CHUNK}
ENCODING_FORMATS = ("float", "base64")
_HYBRID_SCORE = {s.value: s for s in HybridScore}

TOKEN_IDS = (
    "is a list of token ids; this server tokenizes itself: send text (a string or a list of strings). "
    "LangChain's OpenAIEmbeddings sends token ids unless check_embedding_ctx_length=False"
)


def body_object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidArgument("body", f"must be a JSON object, got {_kind(data)}")
    return data


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array",
            dict: "an object"}.get(type(value), type(value).__name__)


def _str(body: dict[str, Any], name: str, default: str = "") -> str:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise InvalidArgument(name, f"must be a string, got {_kind(value)}")
    return value


def _bool(body: dict[str, Any], name: str, default: bool | None) -> bool | None:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidArgument(name, f"must be true or false, got {_kind(value)}")
    return value


def _int(body: dict[str, Any], name: str, *, minimum: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(name, f"must be an integer, got {_kind(value)}")
    if value < minimum:
        raise InvalidArgument(name, f"must be >= {minimum}, got {value}")
    return value


def _choice(body: dict[str, Any], name: str, table: dict[Any, Any], default: Any) -> Any:
    value = body.get(name)
    if value is None:
        return default
    key = value.lower() if isinstance(value, str) else value
    if isinstance(key, (str, bool)) and key in table:
        return table[key]
    known = ", ".join(repr(k) for k in table if isinstance(k, str))
    raise InvalidArgument(name, f"{value!r} is not one of {known}")


def texts_of(body: dict[str, Any], name: str) -> tuple[list[str], bool]:
    """A field holding a string or a list of strings: (the texts, whether it was one string)."""
    raw = body.get(name)
    if raw is None:
        raise InvalidArgument(name, "is required: a string or a list of strings")
    if isinstance(raw, str):
        return [raw], True
    if not isinstance(raw, list):
        raise InvalidArgument(name, f"must be a string or a list of strings, got {_kind(raw)}")
    for i, item in enumerate(raw):
        if not isinstance(item, str):
            if isinstance(item, (int, list)) and not isinstance(item, bool):
                raise InvalidArgument(name, TOKEN_IDS)
            raise InvalidArgument(f"{name}[{i}]", f"must be a string, got {_kind(item)}")
    return raw, False


# The field readers, for routes in their own modules (http/hybrid.py).
string, boolean, integer = _str, _bool, _int


def input_type(body: dict[str, Any]) -> InputType:
    value: InputType = _choice(body, "input_type", _INPUT_TYPE, InputType.DEFAULT)
    return value


def truncation(body: dict[str, Any]) -> Truncate:
    value: Truncate = _choice(body, "truncation", _TRUNCATION, Truncate.END)
    return value


def _numbers(body: dict[str, Any], name: str) -> tuple[float, ...]:
    value = body.get(name)
    if value is None:
        return ()
    if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
        raise InvalidArgument(name, f"must be a list of numbers, got {_kind(value)}")
    return tuple(float(v) for v in value)


@dataclasses.dataclass(frozen=True)
class EmbeddingsRequest:
    model: str
    params: EncodeParams
    encoding_format: str
    scalar_input: bool  # `input` was one string


def embeddings_request(body: dict[str, Any]) -> EmbeddingsRequest:
    """OpenAI's POST /v1/embeddings body, plus our extensions (input_type, truncation, long_input,
    chunk_overlap, normalize, prompt_name)."""
    texts, scalar = texts_of(body, "input")
    encoding = _str(body, "encoding_format", "float")
    if encoding not in ENCODING_FORMATS:
        raise InvalidArgument("encoding_format", f"{encoding!r} is not one of 'float', 'base64'")
    long_input = _choice(body, "long_input", _LONG_INPUT, LongInput.TRUNCATE)
    params = EncodeParams(
        texts=texts,
        input_type=_choice(body, "input_type", _INPUT_TYPE, InputType.DEFAULT),
        prompt_name=_str(body, "prompt_name"),
        normalize=_bool(body, "normalize", None),
        dimensions=_int(body, "dimensions", minimum=1) or 0,
        truncate=_choice(body, "truncation", _TRUNCATION, Truncate.END),
        long_input=long_input,
        chunk_overlap=_int(body, "chunk_overlap", minimum=0),
    )
    return EmbeddingsRequest(model=_str(body, "model"), params=params, encoding_format=encoding, scalar_input=scalar)


def embeddings_response(result: EncodeResult, *, encoding_format: str) -> dict[str, Any]:
    """OpenAI's response. Float vectors stay numpy rows: the JSON encoder writes them (each
    float32 as the shortest text that reads back as the same float32); base64 is the rows'
    little-endian float32 bytes, as OpenAI sends them."""
    matrix = result.embeddings
    if encoding_format == "base64":
        rows = np.ascontiguousarray(matrix, dtype="<f4")
        data = [{"object": "embedding", "index": i, "embedding": base64.b64encode(rows[i].tobytes()).decode("ascii")}
                for i in range(rows.shape[0])]
    else:
        data = [{"object": "embedding", "index": i, "embedding": matrix[i]} for i in range(matrix.shape[0])]
    usage = result.usage
    return {
        "object": "list",
        "data": data,
        "model": usage.model,
        "usage": {"prompt_tokens": usage.tokens, "total_tokens": usage.tokens},
    }


@dataclasses.dataclass(frozen=True)
class RerankRequest:
    model: str
    params: RerankParams


def rerank_request(body: dict[str, Any]) -> RerankRequest:
    """Cohere's (v1, v2) and Jina's POST /v1/rerank body: query, documents (strings or
    {"text": ...}), top_n, return_documents (default false, as Cohere's; Cohere's v2 has no such
    field); plus raw_scores, truncation, long_input, chunk_overlap."""
    query = body.get("query")
    if query is None:
        raise InvalidArgument("query", "is required: a string")
    if not isinstance(query, str):
        raise InvalidArgument("query", f"must be a string, got {_kind(query)}")
    raw = body.get("documents")
    if raw is None:
        raise InvalidArgument("documents", "is required: a list of strings or of {\"text\": ...} objects")
    if not isinstance(raw, list):
        raise InvalidArgument("documents", f"must be a list, got {_kind(raw)}")
    documents: list[str] = []
    for i, item in enumerate(raw):
        if isinstance(item, dict):
            item = item.get("text")
            if not isinstance(item, str):
                raise InvalidArgument(f"documents[{i}].text", "is required: a string")
        elif not isinstance(item, str):
            raise InvalidArgument(f"documents[{i}]", f"must be a string or {{\"text\": ...}}, got {_kind(item)}")
        documents.append(item)
    raw_scores = _bool(body, "raw_scores", False)
    params = RerankParams(
        query=query,
        documents=documents,
        top_k=_int(body, "top_n", minimum=0),
        return_documents=bool(_bool(body, "return_documents", False)),
        scores=ScoreMode.RAW if raw_scores else ScoreMode.ACTIVATED,
        truncate=_choice(body, "truncation", _TRUNCATION, Truncate.END),
        long_input=_choice(body, "long_input", _LONG_INPUT, LongInput.TRUNCATE),
        chunk_overlap=_int(body, "chunk_overlap", minimum=0),
        hybrid_score=_choice(body, "hybrid_score", _HYBRID_SCORE, HybridScore.WEIGHTED),
        hybrid_weights=_numbers(body, "hybrid_weights"),
    )
    return RerankRequest(model=_str(body, "model"), params=params)


def rerank_response(result: RerankResult, *, api_version: str) -> dict[str, Any]:
    """Cohere's response (id, results, meta) with Jina's fields beside it (model, usage): each
    reader finds what it looks for and ignores the rest."""
    usage = result.usage
    results: list[dict[str, Any]] = []
    for r in result.results:
        item: dict[str, Any] = {"index": r.index, "relevance_score": r.score}
        if r.hybrid_scores is not None:
            item["hybrid_scores"] = r.hybrid_scores
        if r.document is not None:
            item["document"] = {"text": r.document}
        results.append(item)
    return {
        "id": usage.request_id,
        "model": usage.model,
        "results": results,
        "usage": {"total_tokens": usage.tokens, "prompt_tokens": usage.tokens},
        "meta": {"api_version": {"version": api_version}, "tokens": {"input_tokens": usage.tokens, "output_tokens": 0}},
    }
