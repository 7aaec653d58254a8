"""Sparse embeddings (sentence-transformers' SparseEncoder, SPLADE): a vocabulary-sized vector per
text, of which a few entries are non-zero.

The graph outputs the pooled activations (``sparse_embedding``, batch x vocabulary); the model's
``max_active_dims`` cut and the (index, value) pairs are made here, for the server and the
exporter's parity alike. A self-check reference row is the text's non-zero pairs, flattened
(index, value, index, value, ...), sorted by index.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from embedrank.model.errors import ManifestError
from embedrank.model.jsonread import Reader
from embedrank.model.kinds.base import Kind, ModelKind
from embedrank.model.runtime.base import TokenSeq

POOLINGS = ("max", "sum")
ACTIVATIONS = ("relu", "log1p_relu")


@dataclasses.dataclass(frozen=True)
class SparseSpec:
    dimensions: int  # the vocabulary size
    pooling: str  # max | sum (SpladePooling.pooling_strategy)
    activation: str  # relu | log1p_relu (SpladePooling.activation_function)
    max_active_dims: int | None
    prompts: dict[str, str]
    default_prompt_name: str | None
    similarity_fn: str


def cut_active(row: np.ndarray, k: int | None) -> np.ndarray:
    """sentence_transformers.util.select_max_active_dims for one row: only its k largest |values|."""
    if k is None or k >= row.shape[0]:
        return row
    keep = np.argpartition(-np.abs(row), k - 1)[:k]
    out = np.zeros_like(row)
    out[keep] = row[keep]
    return out


def nonzero_pairs(row: np.ndarray, *, max_active_dims: int | None, top_k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(indices, values) of the non-zero entries, highest value first (ties: lower index first),
    after the model's max_active_dims cut, cut to ``top_k`` when given."""
    row = cut_active(row, max_active_dims)
    idx = np.flatnonzero(row)
    vals = row[idx]
    order = np.lexsort((idx, -vals))
    if top_k is not None:
        order = order[:top_k]
    return idx[order].astype(np.uint32), vals[order].astype(np.float32)


def compare(reference: Sequence[np.ndarray], got: Sequence[np.ndarray]) -> dict[str, float]:
    """Rows as flat_pairs makes them: the share of rows with the same non-zero indices, and the largest
    difference of a value at an index both have, relative to the row's largest weight (a weight near
    zero is log1p of a logit near zero, where float32 rounding of the logits is all the difference)."""
    same = 0
    worst = 0.0
    for ref, row in zip(reference, got):
        ri, rv = ref[1::2].astype(np.int64), ref[2::2]
        gi, gv = row[1::2].astype(np.int64), row[2::2]
        same += int(np.array_equal(np.sort(ri), np.sort(gi)))
        common, ra, ga = np.intersect1d(ri, gi, return_indices=True)
        if common.size:
            scale = max(float(np.abs(rv).max()), 1e-12)
            worst = max(worst, float(np.abs(rv[ra] - gv[ga]).max()) / scale)
    return {"index_agreement": same / max(1, len(reference)), "max_rel_diff": worst}


def flat_pairs(row: np.ndarray, max_active_dims: int | None) -> np.ndarray:
    """A dense row as the self check records it: [pairs, index, value, index, value, ...] by index."""
    row = cut_active(row, max_active_dims)
    idx = np.flatnonzero(row)
    out = np.empty(1 + 2 * idx.size, dtype=np.float64)
    out[0] = idx.size
    out[1::2] = idx
    out[2::2] = row[idx]
    return out


class SparseKind(Kind):
    kind = ModelKind.SPARSE
    output = "sparse_embedding"
    rpc = "SparseEmbed.EncodeSparse"
    gates = frozenset({"min_index_agreement", "max_rel_diff"})
    ragged = True

    def parse(self, r: Reader, *, outputs: Sequence[str], where: str) -> SparseSpec:
        s = r.sub(self.section)
        spec = SparseSpec(
            dimensions=s.get("dimensions", int),
            pooling=s.get("pooling", str),
            activation=s.get("activation", str),
            max_active_dims=s.get("max_active_dims", int, None),
            prompts=dict(s.get("prompts", dict, {})),
            default_prompt_name=s.get("default_prompt_name", str, None),
            similarity_fn=s.get("similarity_fn", str, "dot"),
        )
        if spec.pooling not in POOLINGS or spec.activation not in ACTIVATIONS:
            raise ManifestError(f"{where}: sparse.pooling must be one of {POOLINGS}, sparse.activation one of {ACTIVATIONS}")
        if spec.max_active_dims is not None and spec.max_active_dims < 1:
            raise ManifestError(f"{where}: sparse.max_active_dims must be positive (or absent)")
        if self.output not in outputs:
            raise ManifestError(f"{where}: a sparse graph must output {self.output}")
        return spec

    def check_inputs(self, inputs: Sequence[Any], *, queries: int, where: str) -> None:
        if not all(isinstance(t, str) and t for t in inputs):
            raise ManifestError(f"{where}: self_check.inputs of a sparse model must be texts")

    def self_check_row(self, spec: Any, output: np.ndarray, item: Any, seq: TokenSeq) -> np.ndarray:
        return flat_pairs(output[0], spec.max_active_dims if isinstance(spec, SparseSpec) else None)

    def measure(self, reference: Any, got: Any, *, queries: int) -> dict[str, float]:
        return compare(reference, got)

    def warm_up_inputs(self, max_tokens: int) -> tuple[str, str]:
        return "warm up " * (max_tokens // 2), "warm up"


SPARSE = SparseKind()
