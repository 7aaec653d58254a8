"""The hybrid (BGE-M3) facade: one model run per text gives its dense vector, lexical weights and
ColBERT vectors. EncodeHybrid returns any of the three from that run; Encode, EncodeSparse and
EncodeMultiVector each return one of them, with their own RPC's options and result; Rerank scores
documents as FlagEmbedding's compute_score does."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
from collections.abc import Sequence
from typing import Any

import numpy as np

from embedrank.model.errors import EmptyInput, InvalidArgument
from embedrank.model.kinds.hybrid import DEFAULT_WEIGHTS, HybridScore, HybridSpec, scores, text_outputs
from embedrank.model.runtime.base import TokenSeq
from embedrank.model.tokenize import Truncate
from embedrank.server.engine.multivector import MultiVectorParams, MultiVectorResult
from embedrank.server.engine.postprocess import OutputPrecision, check_precision, quantize
from embedrank.server.engine.requests import (
    EncodeParams, EncodeResult, InputType, LongInput, Ranked, RerankParams, RerankResult, Timing, Usage,
)
from embedrank.server.engine.served import ServedModel, check_texts, is_blank
from embedrank.server.engine.sparse import SparseParams, SparseResult, SparseVector, pick_prompt

# One text's results: dense vector, (ids, weights) highest first, ColBERT vectors.
TextOut = tuple[np.ndarray, tuple[np.ndarray, np.ndarray], np.ndarray]


class HybridOutput(enum.Enum):
    DENSE = "dense"
    SPARSE = "sparse"
    MULTI_VECTOR = "multi_vector"


@dataclasses.dataclass(frozen=True)
class HybridParams:
    texts: list[str]
    input_type: InputType = InputType.DEFAULT
    prompt_name: str = ""
    truncate: Truncate = Truncate.END
    outputs: frozenset[HybridOutput] = frozenset(HybridOutput)
    sparse_top_k: int | None = None
    return_tokens: bool = False
    precision: OutputPrecision = OutputPrecision.FLOAT32


@dataclasses.dataclass(frozen=True)
class HybridResult:
    dense: np.ndarray | None  # [texts, dimensions] (as `precision`)
    sparse: list[SparseVector] | None
    multi_vector: list[np.ndarray] | None  # per text [n_i, colbert dimensions] (as `precision`)
    dimensions: int
    colbert_dimensions: int
    sparse_dimensions: int
    token_counts: list[int]
    truncated: list[bool]
    usage: Usage
    precision: OutputPrecision = OutputPrecision.FLOAT32


def check_weights(weights: Sequence[float]) -> tuple[float, float, float]:
    """compute_score's weights_for_different_modes: three non-negative numbers, not all zero; () = 1, 1, 1."""
    if not weights:
        return DEFAULT_WEIGHTS
    if len(weights) != 3:
        raise InvalidArgument("hybrid_weights", f"has {len(weights)} numbers; give three (dense, sparse, ColBERT)")
    if any(not np.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise InvalidArgument("hybrid_weights", f"{list(weights)}: each must be a finite number >= 0, not all 0")
    w0, w1, w2 = (float(w) for w in weights)
    return w0, w1, w2


class HybridModel(ServedModel):
    @property
    def spec(self) -> HybridSpec:
        return self.manifest.spec_as(HybridSpec)

    def _batch_fn(self):  # type: ignore[no-untyped-def]
        runtime = self.runtime
        unused = self.spec.unused_token_ids

        def run(batch: Sequence[TokenSeq], lone: bool) -> list[TextOut]:
            out = runtime.run(batch, lone=lone)
            # On the worker thread: each text's lexical weights (not its per-token weights) go back.
            return [text_outputs(out, i, seq, unused) for i, seq in enumerate(batch)]

        return run

    def prompt_for(self, input_type: InputType, prompt_name: str) -> str:
        spec = self.spec
        return pick_prompt(spec.prompts, spec.default_prompt_name, input_type=input_type, prompt_name=prompt_name,
                           model=self.name)

    async def _outputs(
        self, texts: list[str], *, input_type: InputType, prompt_name: str, truncate: Truncate, field: str,
        deadline: float | None, request_id: str, chars: int | None = None,
    ) -> tuple[list[TextOut], list[TokenSeq], list[bool], Usage]:
        if chars is None:
            chars = check_texts(texts, field, self.limits)
        prompt = self.prompt_for(input_type, prompt_name)
        inputs = [prompt + t for t in texts] if prompt else texts
        return await self.run(inputs, truncate=truncate, field=field, chars=chars, deadline=deadline,
                              request_id=request_id)

    def _sparse_vectors(self, outs: list[TextOut], top_k: int | None, tokens: bool) -> list[SparseVector]:
        if top_k is not None and top_k < 0:
            raise InvalidArgument("top_k", f"{top_k} is negative; leave it unset for every non-zero weight")
        vectors = []
        for _, (ids, weights), _ in outs:
            if top_k is not None:
                ids, weights = ids[:top_k], weights[:top_k]
            names = [self.tokenizer.id_to_token(int(i)) for i in ids] if tokens else []
            vectors.append(SparseVector(ids, weights, names))
        return vectors

    async def encode_hybrid(self, params: HybridParams, *, deadline: float | None, request_id: str) -> HybridResult:
        spec = self.spec
        if not params.outputs:
            raise InvalidArgument("outputs", "is empty; leave it unset for all three or name some")
        check_precision(params.precision, None, model=self.name)
        if params.sparse_top_k is not None and params.sparse_top_k < 0:
            raise InvalidArgument("sparse_top_k", f"{params.sparse_top_k} is negative; leave it unset for all weights")
        outs, seqs, truncated, usage = await self._outputs(
            params.texts, input_type=params.input_type, prompt_name=params.prompt_name, truncate=params.truncate,
            field="texts", deadline=deadline, request_id=request_id,
        )
        dense = colbert = sparse = None
        if HybridOutput.DENSE in params.outputs:
            dense = quantize(np.stack([o[0] for o in outs]), params.precision, None, model=self.name)
        if HybridOutput.SPARSE in params.outputs:
            sparse = self._sparse_vectors(outs, params.sparse_top_k, params.return_tokens)
        if HybridOutput.MULTI_VECTOR in params.outputs:
            colbert = [quantize(np.ascontiguousarray(o[2], dtype=np.float32), params.precision, None, model=self.name)
                       for o in outs]
        return HybridResult(
            dense=dense, sparse=sparse, multi_vector=colbert, dimensions=spec.dimensions,
            colbert_dimensions=spec.colbert_dimensions, sparse_dimensions=spec.vocab_size,
            token_counts=[s.length for s in seqs], truncated=truncated, usage=usage, precision=params.precision,
        )

    async def encode(self, params: EncodeParams, *, deadline: float | None, request_id: str) -> EncodeResult:
        """Encode: the dense vectors (normalized, as BGEM3FlagModel's normalize_embeddings)."""
        if params.normalize is False:
            raise InvalidArgument("normalize", f"{self.name}'s dense vectors are normalized in the model "
                                  "(FlagEmbedding's normalize_embeddings); leave it unset or true")
        if params.long_input is LongInput.CHUNK:
            raise InvalidArgument("long_input", "LONG_INPUT_CHUNK is not served for hybrid models; leave it unset")
        dims = params.dimensions or self.spec.dimensions
        if dims > self.spec.dimensions:
            raise InvalidArgument("dimensions", f"{params.dimensions} is over the model's {self.spec.dimensions}")
        check_precision(params.precision, None, model=self.name)
        outs, seqs, truncated, usage = await self._outputs(
            params.texts, input_type=params.input_type, prompt_name=params.prompt_name, truncate=params.truncate,
            field="texts", deadline=deadline, request_id=request_id,
        )
        matrix = np.stack([o[0] for o in outs])
        if dims < self.spec.dimensions:  # Matryoshka-style cut, re-normalized
            matrix = matrix[:, :dims] / np.maximum(np.linalg.norm(matrix[:, :dims], axis=1, keepdims=True), 1e-12)
        return EncodeResult(
            embeddings=quantize(np.ascontiguousarray(matrix, dtype=np.float32), params.precision, None, model=self.name),
            dimensions=dims, precision=params.precision, token_counts=[s.length for s in seqs], truncated=truncated,
            usage=usage,
        )

    async def encode_sparse(self, params: SparseParams, *, deadline: float | None, request_id: str) -> SparseResult:
        """EncodeSparse: the lexical weights."""
        if params.top_k is not None and params.top_k < 0:
            raise InvalidArgument("top_k", f"{params.top_k} is negative; leave it unset for every non-zero weight")
        outs, seqs, truncated, usage = await self._outputs(
            params.texts, input_type=params.input_type, prompt_name=params.prompt_name, truncate=params.truncate,
            field="texts", deadline=deadline, request_id=request_id,
        )
        return SparseResult(vectors=self._sparse_vectors(outs, params.top_k, params.return_tokens),
                            dimensions=self.spec.vocab_size, token_counts=[s.length for s in seqs],
                            truncated=truncated, usage=usage)

    async def encode_multi_vector(
        self, params: MultiVectorParams, *, deadline: float | None, request_id: str
    ) -> MultiVectorResult:
        """EncodeMultiVector: the ColBERT vectors."""
        check_precision(params.precision, None, model=self.name)
        outs, seqs, truncated, usage = await self._outputs(
            params.texts, input_type=params.input_type, prompt_name=params.prompt_name, truncate=params.truncate,
            field="texts", deadline=deadline, request_id=request_id,
        )
        vectors = [quantize(np.ascontiguousarray(o[2], dtype=np.float32), params.precision, None, model=self.name)
                   for o in outs]
        return MultiVectorResult(vectors=vectors, dimensions=self.spec.colbert_dimensions,
                                 token_counts=[s.length for s in seqs], truncated=truncated, usage=usage,
                                 precision=params.precision)

    async def rerank(self, params: RerankParams, *, deadline: float | None, request_id: str) -> RerankResult:
        """compute_score: the query and the documents each run once (concurrently: they may share batches);
        every figure per document, ``hybrid_score`` (default the weighted sum) as its score."""
        if is_blank(params.query):
            raise EmptyInput("query", "is empty (only whitespace, control or zero-width characters)")
        if len(params.query) > self.limits.max_chars:
            raise InvalidArgument("query", f"has {len(params.query)} characters, over the limit of {self.limits.max_chars}")
        chars = check_texts(params.documents, "documents", self.limits)
        if params.top_k is not None and params.top_k < 0:
            raise InvalidArgument("top_k", f"{params.top_k} is negative; leave it unset for all documents")
        if params.long_input is LongInput.CHUNK:
            raise InvalidArgument("long_input", "LONG_INPUT_CHUNK is not served for hybrid models; leave it unset")
        weights = check_weights(params.hybrid_weights)
        common: dict[str, Any] = {"prompt_name": "", "truncate": params.truncate, "deadline": deadline,
                                  "request_id": request_id}
        (query, _, _, q_usage), (docs, seqs, truncated, d_usage) = await asyncio.gather(
            self._outputs([params.query], input_type=InputType.QUERY, field="query", chars=len(params.query), **common),
            self._outputs(params.documents, input_type=InputType.DOCUMENT, field="documents", chars=chars, **common),
        )
        figures = [scores(query[0], d, weights) for d in docs]
        chosen = np.array([f[params.hybrid_score] for f in figures], dtype=np.float64)
        order = np.argsort(-chosen, kind="stable")
        if params.top_k is not None:
            order = order[: params.top_k]
        ranked = [
            Ranked(index=int(i), score=float(chosen[i]), label_scores=[], truncated=truncated[i],
                   token_count=seqs[i].length, document=params.documents[i] if params.return_documents else None,
                   hybrid_scores={k.value: v for k, v in figures[i].items()})
            for i in order
        ]
        qt, dt = q_usage.timing, d_usage.timing
        usage = dataclasses.replace(
            d_usage, chars=q_usage.chars + d_usage.chars, tokens=q_usage.tokens + d_usage.tokens,
            timing=Timing(tokenize_ns=qt.tokenize_ns + dt.tokenize_ns, queue_ns=max(qt.queue_ns, dt.queue_ns),
                          inference_ns=max(qt.inference_ns, dt.inference_ns), total_ns=max(qt.total_ns, dt.total_ns)),
        )
        return RerankResult(results=ranked, usage=usage)


__all__ = ["HybridModel", "HybridOutput", "HybridParams", "HybridResult", "HybridScore", "check_weights"]
