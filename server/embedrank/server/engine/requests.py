"""What the engine takes and returns: plain dataclasses, no protos."""

from __future__ import annotations

import dataclasses
import enum

import numpy as np

from embedrank.model.kinds.hybrid import HybridScore
from embedrank.server.engine.postprocess import OutputPrecision
from embedrank.model.tokenize import Truncate


class InputType(enum.Enum):
    DEFAULT = "default"
    QUERY = "query"
    DOCUMENT = "document"


class LongInput(enum.Enum):
    TRUNCATE = "truncate"  # cut as `truncate` says
    CHUNK = "chunk"  # split into overlapping token windows, run them all


class ScoreMode(enum.Enum):
    ACTIVATED = "activated"
    RAW = "raw"


@dataclasses.dataclass(frozen=True)
class Timing:
    tokenize_ns: int = 0
    queue_ns: int = 0
    inference_ns: int = 0
    total_ns: int = 0


@dataclasses.dataclass(frozen=True)
class Usage:
    request_id: str
    model: str
    version: int
    chars: int
    tokens: int
    timing: Timing


@dataclasses.dataclass(frozen=True)
class EncodeParams:
    texts: list[str]
    input_type: InputType = InputType.DEFAULT
    prompt_name: str = ""
    normalize: bool | None = None
    dimensions: int = 0
    truncate: Truncate = Truncate.END
    precision: OutputPrecision = OutputPrecision.FLOAT32
    long_input: LongInput = LongInput.TRUNCATE
    chunk_overlap: int | None = None  # None = the default for the window
    return_chunks: bool = False


@dataclasses.dataclass(frozen=True)
class TextChunk:
    """One window of a text: text[start:end] (code points), and its tokens (prompt, specials included)."""

    text_index: int
    start: int
    end: int
    token_count: int


@dataclasses.dataclass(frozen=True)
class EncodeResult:
    embeddings: np.ndarray  # float32 [rows, dims], or int8/uint8 [rows, dims or dims/8]
    dimensions: int
    precision: OutputPrecision
    token_counts: list[int]
    truncated: list[bool]
    usage: Usage
    chunk_counts: list[int] = dataclasses.field(default_factory=list)  # LongInput.CHUNK only
    chunk_embeddings: np.ndarray | None = None  # return_chunks: one row per chunk
    chunks: list[TextChunk] = dataclasses.field(default_factory=list)  # return_chunks


@dataclasses.dataclass(frozen=True)
class RerankParams:
    query: str
    documents: list[str]
    top_k: int | None = None
    return_documents: bool = False
    scores: ScoreMode = ScoreMode.ACTIVATED
    truncate: Truncate = Truncate.END
    long_input: LongInput = LongInput.TRUNCATE
    chunk_overlap: int | None = None
    hybrid_score: HybridScore = HybridScore.WEIGHTED  # hybrid (BGE-M3) models: which figure is the score
    hybrid_weights: tuple[float, ...] = ()  # hybrid models: dense, sparse, ColBERT weights; () = 1, 1, 1

    @property
    def hybrid_options(self) -> list[str]:
        """The hybrid-only fields this request sets (the fields to name when the model is not hybrid)."""
        return [name for name, unset in (("hybrid_score", self.hybrid_score is HybridScore.WEIGHTED),
                                         ("hybrid_weights", not self.hybrid_weights)) if not unset]


@dataclasses.dataclass(frozen=True)
class Ranked:
    index: int
    score: float
    label_scores: list[float]
    truncated: bool
    token_count: int
    document: str | None
    span: tuple[int, int] | None = None  # LongInput.CHUNK: the best window's characters
    chunk_count: int = 0  # LongInput.CHUNK: windows the document was split into
    hybrid_scores: dict[str, float] | None = None  # hybrid models: every compute_score figure, by HybridScore value


@dataclasses.dataclass(frozen=True)
class RerankResult:
    results: list[Ranked]
    usage: Usage
