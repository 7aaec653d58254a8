"""Protos <-> engine dataclasses."""

from __future__ import annotations

import time

import grpc
import numpy as np

from embedrank.server.engine.postprocess import OutputPrecision
from embedrank.server.engine.requests import (
    EncodeParams, EncodeResult, InputType, LongInput, RerankParams, RerankResult, ScoreMode, Usage,
)
from embedrank.model.kinds.hybrid import HybridScore
from embedrank.model.tokenize import Truncate
from embedrank.model.errors import InvalidArgument
from embedrank.v1 import common_pb2, embed_pb2, rerank_pb2

_TRUNCATION = {
    common_pb2.TRUNCATION_UNSPECIFIED: Truncate.END,
    common_pb2.TRUNCATION_END: Truncate.END,
    common_pb2.TRUNCATION_START: Truncate.START,
    common_pb2.TRUNCATION_NONE: Truncate.NONE,
}
_LONG_INPUT = {
    common_pb2.LONG_INPUT_UNSPECIFIED: LongInput.TRUNCATE,
    common_pb2.LONG_INPUT_TRUNCATE: LongInput.TRUNCATE,
    common_pb2.LONG_INPUT_CHUNK: LongInput.CHUNK,
}
_INPUT_TYPE = {
    embed_pb2.INPUT_TYPE_UNSPECIFIED: InputType.DEFAULT,
    embed_pb2.INPUT_TYPE_QUERY: InputType.QUERY,
    embed_pb2.INPUT_TYPE_DOCUMENT: InputType.DOCUMENT,
}
PRECISION = {
    embed_pb2.PRECISION_UNSPECIFIED: OutputPrecision.FLOAT32,
    embed_pb2.PRECISION_FLOAT32: OutputPrecision.FLOAT32,
    embed_pb2.PRECISION_INT8: OutputPrecision.INT8,
    embed_pb2.PRECISION_UINT8: OutputPrecision.UINT8,
    embed_pb2.PRECISION_BINARY: OutputPrecision.BINARY,
    embed_pb2.PRECISION_UBINARY: OutputPrecision.UBINARY,
}
PRECISION_TO_PROTO = {v: k for k, v in PRECISION.items() if k != embed_pb2.PRECISION_UNSPECIFIED}
_SCORES = {
    rerank_pb2.SCORE_MODE_UNSPECIFIED: ScoreMode.ACTIVATED,
    rerank_pb2.SCORE_MODE_ACTIVATED: ScoreMode.ACTIVATED,
    rerank_pb2.SCORE_MODE_RAW: ScoreMode.RAW,
}

_HYBRID_SCORES = {
    rerank_pb2.HYBRID_SCORE_UNSPECIFIED: HybridScore.WEIGHTED,
    rerank_pb2.HYBRID_SCORE_WEIGHTED: HybridScore.WEIGHTED,
    rerank_pb2.HYBRID_SCORE_DENSE: HybridScore.DENSE,
    rerank_pb2.HYBRID_SCORE_SPARSE: HybridScore.SPARSE,
    rerank_pb2.HYBRID_SCORE_COLBERT: HybridScore.COLBERT,
    rerank_pb2.HYBRID_SCORE_SPARSE_DENSE: HybridScore.SPARSE_DENSE,
}


def _enum(table: dict[int, object], value: int, field: str) -> object:
    try:
        return table[value]
    except KeyError:
        raise InvalidArgument(field, f"{value} is not a known value") from None


def input_type(value: int) -> InputType:
    """A request's input_type field (EncodeRequest's enum, shared by the sparse and multi-vector RPCs)."""
    return _enum(_INPUT_TYPE, value, "input_type")  # type: ignore[arg-type, return-value]


def truncation(value: int) -> Truncate:
    return _enum(_TRUNCATION, value, "truncation")  # type: ignore[arg-type, return-value]


def deadline_of(context: grpc.aio.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


def encode_params(req: embed_pb2.EncodeRequest) -> EncodeParams:
    return EncodeParams(
        texts=list(req.texts),
        input_type=_enum(_INPUT_TYPE, req.input_type, "input_type"),  # type: ignore[arg-type]
        prompt_name=req.prompt_name,
        normalize=req.normalize if req.HasField("normalize") else None,
        dimensions=req.dimensions,
        truncate=_enum(_TRUNCATION, req.truncation, "truncation"),  # type: ignore[arg-type]
        precision=precision(req.precision),
        long_input=_enum(_LONG_INPUT, req.long_input, "long_input"),  # type: ignore[arg-type]
        chunk_overlap=req.chunk_overlap if req.HasField("chunk_overlap") else None,
        return_chunks=req.return_chunks,
    )


def rerank_params(req: rerank_pb2.RerankRequest) -> RerankParams:
    return RerankParams(
        query=req.query,
        documents=list(req.documents),
        top_k=req.top_k if req.HasField("top_k") else None,
        return_documents=req.return_documents,
        scores=_enum(_SCORES, req.scores, "scores"),  # type: ignore[arg-type]
        truncate=_enum(_TRUNCATION, req.truncation, "truncation"),  # type: ignore[arg-type]
        long_input=_enum(_LONG_INPUT, req.long_input, "long_input"),  # type: ignore[arg-type]
        chunk_overlap=req.chunk_overlap if req.HasField("chunk_overlap") else None,
        hybrid_score=_enum(_HYBRID_SCORES, req.hybrid_score, "hybrid_score"),  # type: ignore[arg-type]
        hybrid_weights=tuple(req.hybrid_weights),
    )


def _hybrid_scores(scores: dict[str, float] | None) -> rerank_pb2.HybridScores | None:
    if scores is None:
        return None
    return rerank_pb2.HybridScores(
        dense=scores[HybridScore.DENSE.value], sparse=scores[HybridScore.SPARSE.value],
        colbert=scores[HybridScore.COLBERT.value], sparse_dense=scores[HybridScore.SPARSE_DENSE.value],
        weighted=scores[HybridScore.WEIGHTED.value],
    )


def metadata(usage: Usage) -> common_pb2.Metadata:
    t = usage.timing
    return common_pb2.Metadata(
        model=usage.model,
        version=str(usage.version),
        chars=usage.chars,
        tokens=usage.tokens,
        request_id=usage.request_id,
        timing=common_pb2.Timing(
            tokenize_ns=t.tokenize_ns, queue_ns=t.queue_ns, inference_ns=t.inference_ns, total_ns=t.total_ns
        ),
    )


def precision(value: int) -> OutputPrecision:
    """A request's precision field (EncodeRequest's enum, shared by the multi-vector RPC)."""
    return _enum(PRECISION, value, "precision")  # type: ignore[arg-type, return-value]


def embeddings(matrix: np.ndarray, precision: OutputPrecision, dimensions: int) -> embed_pb2.Embeddings:
    """A packed rows x dimensions matrix (already quantized to ``precision``)."""
    return embed_pb2.Embeddings(
        precision=PRECISION_TO_PROTO[precision], rows=matrix.shape[0], dimensions=dimensions, data=matrix.tobytes(),
    )


def _embeddings(matrix: np.ndarray, result: EncodeResult) -> embed_pb2.Embeddings:
    return embeddings(matrix, result.precision, result.dimensions)


def encode_response(result: EncodeResult) -> embed_pb2.EncodeResponse:
    response = embed_pb2.EncodeResponse(
        embeddings=_embeddings(result.embeddings, result),
        token_counts=result.token_counts,
        truncated=result.truncated,
        metadata=metadata(result.usage),
        chunk_counts=result.chunk_counts,
        chunks=[
            embed_pb2.TextChunk(
                text_index=c.text_index, span=common_pb2.Span(start=c.start, end=c.end), token_count=c.token_count
            )
            for c in result.chunks
        ],
    )
    if result.chunk_embeddings is not None:
        response.chunk_embeddings.CopyFrom(_embeddings(result.chunk_embeddings, result))
    return response


def rerank_response(result: RerankResult) -> rerank_pb2.RerankResponse:
    return rerank_pb2.RerankResponse(
        results=[
            rerank_pb2.RerankResult(
                index=r.index,
                score=r.score,
                document=r.document or "",
                truncated=r.truncated,
                token_count=r.token_count,
                label_scores=r.label_scores,
                span=None if r.span is None else common_pb2.Span(start=r.span[0], end=r.span[1]),
                chunk_count=r.chunk_count,
                hybrid_scores=_hybrid_scores(r.hybrid_scores),
            )
            for r in result.results
        ],
        metadata=metadata(result.usage),
    )
