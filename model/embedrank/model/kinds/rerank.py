"""Cross-encoders (sentence-transformers' CrossEncoder): a score per (query, document) pair."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from typing import Any

import numpy as np

from embedrank.model.errors import ManifestError
from embedrank.model.jsonread import Reader
from embedrank.model.kinds import causal
from embedrank.model.kinds.base import Kind, ModelKind
from embedrank.model.tokenize import TextTokenizer


class Activation(enum.Enum):
    IDENTITY = "identity"
    SIGMOID = "sigmoid"
    SOFTMAX = "softmax"
    TANH = "tanh"


def activate(logits: np.ndarray, activation: Activation) -> np.ndarray:
    """Logits -> the scores callers get, as sentence-transformers' CrossEncoder.predict."""
    out: np.ndarray = logits
    if activation is Activation.SIGMOID:
        out = 1.0 / (1.0 + np.exp(-logits))
    elif activation is Activation.SOFTMAX:
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        out = shifted / shifted.sum(axis=1, keepdims=True)
    elif activation is Activation.TANH:
        out = np.tanh(logits)
    return out.astype(np.float32)


@dataclasses.dataclass(frozen=True)
class RerankSpec:
    num_labels: int
    activation: Activation
    causal: causal.CausalSpec | None = None  # a causal-LM reranker: how its pairs become tokens


class RerankKind(Kind):
    kind = ModelKind.RERANK
    output = "logits"
    rpc = "Rerank.Rerank"
    gates = frozenset({"max_abs_diff", "min_top1_agreement"})

    def parse(self, r: Reader, *, outputs: Sequence[str], where: str) -> RerankSpec:
        k = r.sub(self.section)
        spec = RerankSpec(num_labels=k.get("num_labels", int), activation=k.enum("activation", Activation),
                          causal=causal.parse(k.sub("causal"), where=where) if k.data.get("causal") else None)
        if self.output not in outputs:
            raise ManifestError(f"{where}: a rerank graph must output {self.output}")
        return spec

    def check_inputs(self, inputs: Sequence[Any], *, queries: int, where: str) -> None:
        if not all(isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in inputs):
            raise ManifestError(f"{where}: self_check.inputs of a reranker must be [query, document] pairs")
        if queries < 1 or len(inputs) % queries:
            raise ManifestError(f"{where}: self_check.queries must divide the {len(inputs)} pairs into equal groups")

    def measure(self, reference: np.ndarray, got: np.ndarray, *, queries: int) -> dict[str, float]:
        r, g = reference[:, 0].reshape(queries, -1), got[:, 0].reshape(queries, -1)
        return {
            "max_abs_diff": float(np.abs(reference - got).max()),
            "top1_agreement": float(np.mean(np.argmax(r, axis=1) == np.argmax(g, axis=1))),
        }

    def tokenizer(self, spec: RerankSpec, base: TextTokenizer) -> TextTokenizer:
        return base if spec.causal is None else causal.CausalPairs(base, spec.causal)

    def warm_up_inputs(self, max_tokens: int) -> tuple[tuple[str, str], tuple[str, str]]:
        return ("warm up", "warm up " * (max_tokens // 2)), ("warm up", "warm up")


RERANK = RerankKind()
