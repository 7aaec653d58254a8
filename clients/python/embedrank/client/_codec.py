"""Building requests and decoding responses, shared by Client and AsyncClient."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from embedrank.client.types import (
    Chunk, ChunkedEmbeddings, Classification, HybridEmbeddings, LabelScore, ModelInfo, RerankHit, SparseEmbedding, Token,
    Tokenized,
)
from embedrank.v1 import (
    classify_pb2, common_pb2, embed_pb2, hybrid_pb2, models_pb2, multivector_pb2, pairs_pb2, rerank_pb2, sparse_pb2,
    tokenize_pb2,
)

_PRECISION = {
    "float32": embed_pb2.PRECISION_FLOAT32,
    "int8": embed_pb2.PRECISION_INT8,
    "uint8": embed_pb2.PRECISION_UINT8,
    "binary": embed_pb2.PRECISION_BINARY,
    "ubinary": embed_pb2.PRECISION_UBINARY,
}
_DTYPE: dict[int, np.dtype[Any]] = {
    embed_pb2.PRECISION_FLOAT32: np.dtype("<f4"),
    embed_pb2.PRECISION_INT8: np.dtype(np.int8),
    embed_pb2.PRECISION_UINT8: np.dtype(np.uint8),
    embed_pb2.PRECISION_BINARY: np.dtype(np.int8),
    embed_pb2.PRECISION_UBINARY: np.dtype(np.uint8),
}
_TRUNCATION = {
    None: common_pb2.TRUNCATION_UNSPECIFIED,
    "end": common_pb2.TRUNCATION_END,
    "start": common_pb2.TRUNCATION_START,
    "none": common_pb2.TRUNCATION_NONE,
}
_LONG_INPUT = {None: common_pb2.LONG_INPUT_UNSPECIFIED, "truncate": common_pb2.LONG_INPUT_TRUNCATE, "chunk": common_pb2.LONG_INPUT_CHUNK}
_INPUT_TYPE = {None: embed_pb2.INPUT_TYPE_UNSPECIFIED, "query": embed_pb2.INPUT_TYPE_QUERY, "document": embed_pb2.INPUT_TYPE_DOCUMENT}
_KIND = {
    models_pb2.MODEL_KIND_EMBEDDING: "embedding",
    models_pb2.MODEL_KIND_RERANK: "rerank",
    models_pb2.MODEL_KIND_CLASSIFICATION: "classification",
    models_pb2.MODEL_KIND_SPARSE: "sparse",
    models_pb2.MODEL_KIND_MULTI_VECTOR: "multi-vector",
    models_pb2.MODEL_KIND_HYBRID: "hybrid",
}


def _pick(table: dict[Any, int], value: Any, name: str) -> int:
    if value not in table:
        raise ValueError(f"{name}={value!r}: choose one of {[k for k in table if k is not None]}")
    return table[value]


def encode_request(
    model: str,
    texts: Sequence[str],
    *,
    input_type: str | None = None,
    prompt_name: str | None = None,
    normalize: bool | None = None,
    dimensions: int | None = None,
    truncation: str | None = None,
    precision: str = "float32",
    long_input: str | None = None,
    chunk_overlap: int | None = None,
    return_chunks: bool = False,
) -> embed_pb2.EncodeRequest:
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, not one string")
    req = embed_pb2.EncodeRequest(
        model=model,
        texts=list(texts),
        input_type=_pick(_INPUT_TYPE, input_type, "input_type"),  # type: ignore[arg-type]
        prompt_name=prompt_name or "",
        dimensions=dimensions or 0,
        truncation=_pick(_TRUNCATION, truncation, "truncation"),  # type: ignore[arg-type]
        precision=_pick(_PRECISION, precision, "precision"),  # type: ignore[arg-type]
        long_input=_pick(_LONG_INPUT, long_input, "long_input"),  # type: ignore[arg-type]
        return_chunks=return_chunks,
    )
    if normalize is not None:
        req.normalize = normalize
    if chunk_overlap is not None:
        req.chunk_overlap = chunk_overlap
    return req


def decode_embeddings(resp: embed_pb2.EncodeResponse) -> np.ndarray:
    return _matrix(resp.embeddings)


def decode_chunked(resp: embed_pb2.EncodeResponse, texts: Sequence[str]) -> ChunkedEmbeddings:
    rows = _matrix(resp.chunk_embeddings)
    chunks = [
        Chunk(
            text_index=c.text_index, start=c.span.start, end=c.span.end,
            text=texts[c.text_index][c.span.start : c.span.end], token_count=c.token_count, embedding=rows[i],
        )
        for i, c in enumerate(resp.chunks)
    ]
    return ChunkedEmbeddings(
        embeddings=_matrix(resp.embeddings), chunks=chunks, chunk_embeddings=rows,
        chunk_counts=list(resp.chunk_counts), token_counts=list(resp.token_counts),
    )


def _matrix(emb: embed_pb2.Embeddings) -> np.ndarray:
    dtype = _DTYPE[emb.precision]
    data: np.ndarray = np.frombuffer(emb.data, dtype=dtype)
    return data.reshape(0, emb.dimensions) if emb.rows == 0 else data.reshape(emb.rows, -1)


def rerank_request(
    model: str,
    query: str,
    documents: Sequence[str],
    *,
    top_k: int | None = None,
    return_documents: bool = False,
    raw_scores: bool = False,
    truncation: str | None = None,
    long_input: str | None = None,
    chunk_overlap: int | None = None,
    hybrid_score: str | None = None,
    hybrid_weights: Sequence[float] | None = None,
) -> rerank_pb2.RerankRequest:
    if isinstance(documents, str):
        raise TypeError("documents must be a list of strings, not one string")
    req = rerank_pb2.RerankRequest(
        model=model,
        query=query,
        documents=list(documents),
        return_documents=return_documents,
        scores=rerank_pb2.SCORE_MODE_RAW if raw_scores else rerank_pb2.SCORE_MODE_ACTIVATED,
        truncation=_pick(_TRUNCATION, truncation, "truncation"),  # type: ignore[arg-type]
        long_input=_pick(_LONG_INPUT, long_input, "long_input"),  # type: ignore[arg-type]
        hybrid_score=_pick(_HYBRID_SCORE, hybrid_score, "hybrid_score"),  # type: ignore[arg-type]
        hybrid_weights=list(hybrid_weights or ()),
    )
    if top_k is not None:
        req.top_k = top_k
    if chunk_overlap is not None:
        req.chunk_overlap = chunk_overlap
    return req


_HYBRID_SCORE: dict[Any, int] = {
    None: rerank_pb2.HYBRID_SCORE_UNSPECIFIED, "weighted": rerank_pb2.HYBRID_SCORE_WEIGHTED,
    "dense": rerank_pb2.HYBRID_SCORE_DENSE, "sparse": rerank_pb2.HYBRID_SCORE_SPARSE,
    "colbert": rerank_pb2.HYBRID_SCORE_COLBERT, "sparse+dense": rerank_pb2.HYBRID_SCORE_SPARSE_DENSE,
}


def _hybrid_scores(r: rerank_pb2.RerankResult) -> dict[str, float] | None:
    if not r.HasField("hybrid_scores"):
        return None
    h = r.hybrid_scores
    return {"dense": h.dense, "sparse": h.sparse, "colbert": h.colbert, "sparse+dense": h.sparse_dense,
            "weighted": h.weighted}


def decode_rerank(resp: rerank_pb2.RerankResponse, return_documents: bool) -> list[RerankHit]:
    return [
        RerankHit(
            index=r.index, score=r.score, document=r.document if return_documents else None, truncated=r.truncated,
            span=(r.span.start, r.span.end) if r.chunk_count else None, chunk_count=r.chunk_count,
            hybrid_scores=_hybrid_scores(r),
        )
        for r in resp.results
    ]


def _texts_or_pairs(items: Sequence[str] | Sequence[tuple[str, str]], name: str) -> tuple[list[str], list[pairs_pb2.TextPair]]:
    """A list of texts, or of (first, second) pairs: the request's texts and pairs fields."""
    if isinstance(items, str):
        raise TypeError(f"{name} must be a list of strings or of (first, second) pairs, not one string")
    given: list[Any] = list(items)
    if all(isinstance(x, str) for x in given):
        return given, []
    if all(isinstance(x, (tuple, list)) and len(x) == 2 for x in given):
        return [], [pairs_pb2.TextPair(first=a, second=b) for a, b in given]
    raise TypeError(f"{name} must be all strings or all (first, second) pairs")


def tokenize_request(
    model: str,
    texts: Sequence[str] | Sequence[tuple[str, str]],
    *,
    input_type: str | None = None,
    prompt_name: str | None = None,
    truncation: str | None = None,
) -> tokenize_pb2.TokenizeRequest:
    plain, pairs = _texts_or_pairs(texts, "texts")
    return tokenize_pb2.TokenizeRequest(
        model=model, texts=plain, pairs=pairs,
        input_type=_pick(_INPUT_TYPE, input_type, "input_type"),  # type: ignore[arg-type]
        prompt_name=prompt_name or "",
        truncation=_pick(_TRUNCATION, truncation, "truncation"),  # type: ignore[arg-type]
    )


def decode_tokenize(resp: tokenize_pb2.TokenizeResponse) -> list[Tokenized]:
    return [
        Tokenized(
            tokens=[Token(t.id, t.text, t.span.start, t.span.end, t.special, t.prompt, t.sequence) for t in item.tokens],
            token_count=item.token_count, truncated=item.truncated, prompt=item.prompt, max_tokens=resp.max_tokens,
        )
        for item in resp.inputs
    ]


def classify_request(
    model: str,
    texts_or_pairs: Sequence[str] | Sequence[tuple[str, str]],
    *,
    top_k: int | None = None,
    raw_scores: bool = False,
    truncation: str | None = None,
) -> classify_pb2.ClassifyRequest:
    plain, pairs = _texts_or_pairs(texts_or_pairs, "texts_or_pairs")
    req = classify_pb2.ClassifyRequest(
        model=model, texts=plain, pairs=pairs,
        scores=rerank_pb2.SCORE_MODE_RAW if raw_scores else rerank_pb2.SCORE_MODE_ACTIVATED,
        truncation=_pick(_TRUNCATION, truncation, "truncation"),  # type: ignore[arg-type]
    )
    if top_k is not None:
        req.top_k = top_k
    return req


def decode_classify(resp: classify_pb2.ClassifyResponse) -> list[Classification]:
    return [
        Classification(
            labels=[LabelScore(s.index, s.label, s.score) for s in c.labels], truncated=c.truncated,
            token_count=c.token_count,
        )
        for c in resp.results
    ]


def model_info(info: models_pb2.ModelInfo) -> ModelInfo:
    return ModelInfo(
        name=info.name,
        version=info.version,
        kind=_KIND.get(info.kind, "unknown"),
        dimensions=info.dimensions,
        max_tokens=info.max_tokens,
        similarity_fn=info.similarity_fn,
        prompts=dict(info.prompts),
        graph_precision=info.graph_precision,
        pooling=tuple(p for p in info.pooling.split(",") if p),
        normalize=info.normalize,
        default_prompt_name=info.default_prompt_name or None,
        output_precisions=tuple(name for name, value in _PRECISION.items() if value in info.output_precisions),
        num_labels=info.num_labels,
        activation=info.activation,
        labels=tuple(info.labels),
        problem_type=info.problem_type,
        sparse_pooling=info.sparse_pooling,
        sparse_activation=info.sparse_activation,
        max_active_dims=info.max_active_dims,
        query_length=info.query_length,
        document_length=info.document_length,
        query_expansion_length=info.query_expansion_length,
        manifest=json.loads(info.manifest_json) if info.manifest_json else {},
    )


def sparse_request(
    model: str,
    texts: Sequence[str],
    *,
    top_k: int | None = None,
    return_tokens: bool = False,
    input_type: str | None = None,
    prompt_name: str | None = None,
    truncation: str | None = None,
) -> sparse_pb2.EncodeSparseRequest:
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, not one string")
    req = sparse_pb2.EncodeSparseRequest(
        model=model,
        texts=list(texts),
        input_type=_pick(_INPUT_TYPE, input_type, "input_type"),  # type: ignore[arg-type]
        prompt_name=prompt_name or "",
        return_tokens=return_tokens,
        truncation=_pick(_TRUNCATION, truncation, "truncation"),  # type: ignore[arg-type]
    )
    if top_k is not None:
        req.top_k = top_k
    return req


def decode_sparse(resp: sparse_pb2.EncodeSparseResponse, return_tokens: bool) -> list[SparseEmbedding]:
    return [
        SparseEmbedding(
            indices=np.asarray(v.indices, dtype=np.uint32), values=np.asarray(v.values, dtype=np.float32),
            dimensions=resp.dimensions, tokens=list(v.tokens) if return_tokens else None,
        )
        for v in resp.vectors
    ]


def multi_vector_request(
    model: str,
    texts: Sequence[str],
    *,
    input_type: str | None = None,
    prompt_name: str | None = None,
    truncation: str | None = None,
    precision: str = "float32",
) -> multivector_pb2.EncodeMultiVectorRequest:
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, not one string")
    return multivector_pb2.EncodeMultiVectorRequest(
        model=model,
        texts=list(texts),
        input_type=_pick(_INPUT_TYPE, input_type, "input_type"),  # type: ignore[arg-type]
        prompt_name=prompt_name or "",
        truncation=_pick(_TRUNCATION, truncation, "truncation"),  # type: ignore[arg-type]
        precision=_pick(_PRECISION, precision, "precision"),  # type: ignore[arg-type]
    )


def decode_multi_vector(resp: multivector_pb2.EncodeMultiVectorResponse) -> list[np.ndarray]:
    """Per text its rows: float32, int8/uint8, or packed bits (ceil(dim / 8) bytes a row)."""
    rows = _matrix(resp.embeddings)
    bounds = np.cumsum([0, *resp.vector_counts])
    return [rows[bounds[i] : bounds[i + 1]] for i in range(len(resp.vector_counts))]


_HYBRID_OUTPUT: dict[Any, int] = {"dense": hybrid_pb2.HYBRID_OUTPUT_DENSE, "sparse": hybrid_pb2.HYBRID_OUTPUT_SPARSE,
                  "multi_vector": hybrid_pb2.HYBRID_OUTPUT_MULTI_VECTOR}


def hybrid_request(
    model: str,
    texts: Sequence[str],
    *,
    outputs: Sequence[str] | None = None,
    sparse_top_k: int | None = None,
    return_tokens: bool = False,
    input_type: str | None = None,
    prompt_name: str | None = None,
    truncation: str | None = None,
    precision: str = "float32",
) -> hybrid_pb2.EncodeHybridRequest:
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, not one string")
    req = hybrid_pb2.EncodeHybridRequest(
        model=model,
        texts=list(texts),
        input_type=_pick(_INPUT_TYPE, input_type, "input_type"),  # type: ignore[arg-type]
        prompt_name=prompt_name or "",
        truncation=_pick(_TRUNCATION, truncation, "truncation"),  # type: ignore[arg-type]
        outputs=[_pick(_HYBRID_OUTPUT, o, "outputs") for o in (outputs or ())],  # type: ignore[misc]
        return_tokens=return_tokens,
        precision=_pick(_PRECISION, precision, "precision"),  # type: ignore[arg-type]
    )
    if sparse_top_k is not None:
        req.sparse_top_k = sparse_top_k
    return req


def decode_hybrid(resp: hybrid_pb2.EncodeHybridResponse, return_tokens: bool) -> HybridEmbeddings:
    sparse = None
    if len(resp.sparse):  # one per text when asked for
        sparse = [
            SparseEmbedding(indices=np.asarray(v.indices, dtype=np.uint32), values=np.asarray(v.values, dtype=np.float32),
                            dimensions=resp.sparse_dimensions, tokens=list(v.tokens) if return_tokens else None)
            for v in resp.sparse
        ]
    multi = None
    if resp.HasField("multi_vector"):
        rows = _matrix(resp.multi_vector)
        bounds = np.cumsum([0, *resp.vector_counts])
        multi = [rows[bounds[i] : bounds[i + 1]] for i in range(len(resp.vector_counts))]
    return HybridEmbeddings(dense=_matrix(resp.dense) if resp.HasField("dense") else None, sparse=sparse,
                            multi_vector=multi, token_counts=list(resp.token_counts))


def chunks(texts: Sequence[str], size: int) -> list[Sequence[str]]:
    return [texts[i : i + size] for i in range(0, len(texts), size)]
