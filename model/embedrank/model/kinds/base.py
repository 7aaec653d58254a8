"""What a model kind is: the interface every kind module fills in.

A kind (dense embedding, rerank, ...) is everything about a model version that depends on what
the model computes: its manifest section, the graph output that carries its result, how its
outputs are compared with the reference library's (the load-time self check's figures and gate),
its warm-up inputs and the RPC that serves it. The layers above ask ``kind_of(kind)`` instead of
branching on the kind; each layer keeps its own per-kind module beside it (the exporter's
``embedrank.exporter.kinds``, the engine's served models, the api's servicers).
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from embedrank.model.jsonread import Reader

if TYPE_CHECKING:
    from pathlib import Path

    from embedrank.model.runtime.base import Runtime, TokenSeq
    from embedrank.model.tokenize import TextTokenizer


class ModelKind(enum.Enum):
    EMBEDDING = "embedding"
    RERANK = "rerank"
    CLASSIFICATION = "classification"
    SPARSE = "sparse"
    MULTI_VECTOR = "multi-vector"
    HYBRID = "hybrid"  # BGE-M3: dense, lexical weights and ColBERT vectors from one pass


class Kind(abc.ABC):
    kind: ModelKind
    output: str  # the graph output holding the kind's result
    rpc: str  # the RPC that serves this kind, named to a caller who called another
    gates: frozenset[str]  # the self-check gate's keys this kind understands
    ragged = False  # self-check reference rows may differ in length (one row per input, kind-encoded)

    @property
    def section(self) -> str:
        """The manifest's key for this kind's section."""
        return self.kind.value

    @abc.abstractmethod
    def parse(self, r: Reader, *, outputs: Sequence[str], where: str) -> Any:
        """The manifest section, typed; ManifestError when it cannot be served."""

    @abc.abstractmethod
    def check_inputs(self, inputs: Sequence[Any], *, queries: int, where: str) -> None:
        """Self-check inputs of this kind; ManifestError when they are malformed."""

    @abc.abstractmethod
    def measure(self, reference: Any, got: Any, *, queries: int) -> dict[str, float]:
        """The figures a self-check gate speaks of, from reference and served outputs (rows = inputs:
        one array, or for ``ragged`` kinds a list of one row per input)."""

    @abc.abstractmethod
    def warm_up_inputs(self, max_tokens: int) -> tuple[Any, Any]:
        """A long input and a short one, run through the batcher before a model takes calls."""

    def files(self, spec: Any) -> list[str]:
        """Files of the version folder the kind's section names, beside the graph and tokenizer.json
        (checked with them when the manifest is read)."""
        return []

    def attach(self, spec: Any, directory: Path) -> Any:
        """The section with those files loaded (the server and the exporter call it once per version,
        before the self check); ManifestError when one cannot be used."""
        return spec

    def tokenizer(self, spec: Any, base: TextTokenizer) -> TextTokenizer:
        """The tokenizer the kind's RPC and self check run (``base``: the model's tokenizer.json); a kind
        whose inputs are formatted its own way (a causal-LM reranker's pairs) wraps it."""
        return base

    def self_check_rows(
        self, spec: Any, inputs: Sequence[Any], tokenizer: TextTokenizer, runtime: Runtime, *, queries: int
    ) -> list[np.ndarray]:
        """A ``ragged`` kind's self-check rows: each input run alone, as served."""
        seqs = self.self_check_seqs(spec, inputs, tokenizer)
        return [self.self_check_row(spec, runtime.run([seq])[self.output], item, seq) for item, seq in zip(inputs, seqs)]

    def self_check_seqs(self, spec: Any, inputs: Sequence[Any], tokenizer: TextTokenizer) -> list[TokenSeq]:
        """The self check's inputs tokenized as the served RPC tokenizes them."""
        from embedrank.model.tokenize import Truncate

        seqs, _ = tokenizer.encode(list(inputs), truncate=Truncate.END, field="self_check.inputs")
        return seqs

    def self_check_row(self, spec: Any, output: np.ndarray, item: Any, seq: TokenSeq) -> np.ndarray:
        """One input's row, as the reference records it, from the graph output of a batch of one."""
        row: np.ndarray = output[0]
        return row
