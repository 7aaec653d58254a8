"""Plain results the client returns."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class RerankHit:
    index: int
    score: float
    document: str | None = None
    truncated: bool = False
    # long_input="chunk": the best window's characters, document[span[0]:span[1]], and the window count.
    span: tuple[int, int] | None = None
    chunk_count: int = 0
    # A hybrid (BGE-M3) model: every compute_score figure ("dense", "sparse", "colbert", "sparse+dense",
    # "weighted"); `score` is the one asked for (hybrid_score, default "weighted").
    hybrid_scores: dict[str, float] | None = None


@dataclasses.dataclass(frozen=True)
class Token:
    """One token a model reads: text[start:end] (code points) is what it covers in the caller's text
    (the pair's ``sequence``; prompt tokens: in the prompt; special tokens: 0, 0)."""

    id: int
    text: str  # as the vocabulary writes it ("##ing", "[CLS]")
    start: int
    end: int
    special: bool = False  # [CLS], [SEP], <s>, ...; a multi-vector query's expansion [MASK]
    prompt: bool = False  # part of the prompt placed before the text
    sequence: int = 0  # pairs: 0 first, 1 second


@dataclasses.dataclass(frozen=True)
class Tokenized:
    """``tokenize()``: the tokens of one text or pair, as Encode / Rerank / Classify run them."""

    tokens: list[Token]
    token_count: int
    truncated: bool  # cut to max_tokens (truncation="none": would be)
    prompt: str  # the prompt placed before the text ("" when none)
    max_tokens: int  # the model's limit, special tokens included (multi-vector: for input_type)

    @property
    def ids(self) -> list[int]:
        return [t.id for t in self.tokens]


@dataclasses.dataclass(frozen=True)
class LabelScore:
    index: int  # the label's output index (config.json id2label key)
    label: str
    score: float


@dataclasses.dataclass(frozen=True)
class Classification:
    """``classify()``: one input's labels, highest score first (softmax / sigmoid, or logits with raw_scores)."""

    labels: list[LabelScore]
    truncated: bool = False
    token_count: int = 0

    @property
    def top(self) -> LabelScore:
        return self.labels[0]

    def scores(self) -> dict[str, float]:
        return {s.label: s.score for s in self.labels}


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    kind: str
    dimensions: int
    max_tokens: int
    similarity_fn: str
    prompts: dict[str, str]
    graph_precision: str
    # Embedding models: pooling modes ("mean"), whether vectors are L2-normalized, the prompt used by
    # default, and the output precisions encode(..., precision=) accepts. Rerankers and classifiers: the
    # number of labels, the activation; classifiers: label names and single_label / multi_label.
    pooling: tuple[str, ...] = ()
    normalize: bool = False
    default_prompt_name: str | None = None
    output_precisions: tuple[str, ...] = ()
    num_labels: int = 0
    activation: str = ""
    labels: tuple[str, ...] = ()
    problem_type: str = ""
    # Sparse models: SPLADE pooling (max/sum), activation (relu/log1p_relu), cap on non-zero weights (0 = none).
    sparse_pooling: str = ""
    sparse_activation: str = ""
    max_active_dims: int = 0
    # Multi-vector models: query and document lengths (0 = max_tokens), query expansion length (0 = none).
    query_length: int = 0
    document_length: int = 0
    query_expansion_length: int = 0
    # The manifest's public part: source model type, graph (optimize/quantize), fidelity figures.
    manifest: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Chunk:
    """One token window of a text (long_input="chunk", return_chunks=True)."""

    text_index: int  # position of the text in the request
    start: int  # texts[text_index][start:end] is the window's text
    end: int
    text: str
    token_count: int  # tokens fed to the model (prompt and special tokens included)
    embedding: np.ndarray  # this window's vector (same precision and dimensions as the text's)


@dataclasses.dataclass(frozen=True)
class ChunkedEmbeddings:
    """``encode(..., long_input="chunk", return_chunks=True)``: one vector per text and every window."""

    embeddings: np.ndarray  # one row per text: the token-weighted mean of its windows
    chunks: list[Chunk]  # every window, text by text, in order
    chunk_embeddings: np.ndarray  # one row per window, the rows of `chunks`
    chunk_counts: list[int]  # windows per text
    token_counts: list[int]  # tokens per text, all its windows together

    def chunks_of(self, text_index: int) -> list[Chunk]:
        return [c for c in self.chunks if c.text_index == text_index]


@dataclasses.dataclass(frozen=True)
class SparseEmbedding:
    """One text's sparse vector (``encode_sparse``): its non-zero weights, highest first."""

    indices: np.ndarray  # uint32 vocabulary ids
    values: np.ndarray  # float32 weights
    dimensions: int  # the vocabulary size
    tokens: list[str] | None = None  # return_tokens=True: the token of each index

    def to_scipy(self) -> Any:
        """A 1 x dimensions scipy.sparse CSR matrix (scipy is needed only here)."""
        return to_scipy([self])


def to_scipy(vectors: list[SparseEmbedding]) -> Any:
    """Sparse vectors as one scipy.sparse CSR matrix, a row per vector."""
    try:
        from scipy import sparse
    except ImportError:
        raise ImportError("to_scipy() needs scipy: pip install scipy") from None
    dims = vectors[0].dimensions if vectors else 0
    indptr = np.cumsum([0, *(v.indices.size for v in vectors)])
    indices = np.concatenate([v.indices for v in vectors]) if vectors else np.zeros(0, np.uint32)
    values = np.concatenate([v.values for v in vectors]) if vectors else np.zeros(0, np.float32)
    return sparse.csr_matrix((values, indices.astype(np.int64), indptr), shape=(len(vectors), dims))


@dataclasses.dataclass(frozen=True)
class HybridEmbeddings:
    """``encode_hybrid``: a hybrid (BGE-M3) model's three representations of the texts, from one model run
    (None for those not asked for in ``outputs``)."""

    dense: np.ndarray | None  # one row per text (float32, or packed bits for binary/ubinary)
    sparse: list[SparseEmbedding] | None  # per text: its lexical weights, highest first
    multi_vector: list[np.ndarray] | None  # per text: its ColBERT vectors, one row per token after the first
    token_counts: list[int]
