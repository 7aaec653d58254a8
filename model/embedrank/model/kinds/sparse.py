"""Sparse embeddings (sentence-transformers' SparseEncoder, SPLADE): a vocabulary-sized vector per
text, of which a few entries are non-zero.

The graph outputs the pooled activations (``sparse_embedding``, batch x vocabulary); the model's
``max_active_dims`` cut and the (index, value) pairs are made here, for the server and the
exporter's parity alike. A self-check reference row is the text's non-zero pairs, flattened
(index, value, index, value, ...), sorted by index.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from embedrank.model.errors import ManifestError
from embedrank.model.jsonread import Reader
from embedrank.model.kinds.base import Kind, ModelKind
from embedrank.model.runtime.base import TokenSeq
from embedrank.model.tokenize import Truncate

if TYPE_CHECKING:
    from embedrank.model.runtime.base import Runtime
    from embedrank.model.tokenize import TextTokenizer

POOLINGS = ("max", "sum")
ACTIVATIONS = ("relu", "log1p_relu")
ROUTES = ("query", "document")
TOP_K = 10  # the lossy gate's term recall: how many of a text's highest weights must survive


@dataclasses.dataclass(frozen=True)
class StaticRoute:
    """An inference-free query route (sentence-transformers' SparseStaticEmbedding): a weight per
    vocabulary id; a text's vector holds the weight of every distinct token it has. Its tokenizer adds
    no special tokens and truncates at ``max_tokens`` (the module's tokenizer.model_max_length)."""

    weights_file: str
    tokenizer_file: str
    max_tokens: int
    add_special_tokens: bool
    # Loaded by SparseKind.attach (the server's and the exporter's; a manifest read alone has none).
    weights: np.ndarray | None = dataclasses.field(default=None, compare=False, repr=False)
    tokenizer: TextTokenizer | None = dataclasses.field(default=None, compare=False, repr=False)

    def loaded(self) -> tuple[np.ndarray, TextTokenizer]:
        if self.weights is None or self.tokenizer is None:
            raise TypeError("StaticRoute used before SparseKind.attach loaded it")  # a bug, not an input
        return self.weights, self.tokenizer

    def row(self, seq: TokenSeq) -> np.ndarray:
        """SparseStaticEmbedding.forward for one text: presence of each id (attended tokens) x its weight."""
        weights, _ = self.loaded()
        ids = seq.ids if seq.attended is None else seq.ids[: seq.attended]
        out = np.zeros_like(weights)
        out[ids] = weights[ids]
        return out


@dataclasses.dataclass(frozen=True)
class SparseSpec:
    dimensions: int  # the vocabulary size
    pooling: str  # max | sum (SpladePooling.pooling_strategy)
    activation: str  # relu | log1p_relu (SpladePooling.activation_function)
    max_active_dims: int | None
    prompts: dict[str, str]
    default_prompt_name: str | None
    similarity_fn: str
    # An asymmetric model: its query route (None: the graph serves every text, as before).
    query: StaticRoute | None = None
    # The route a request without an input type takes (Router.default_route); None: it must say.
    default_route: str | None = "document"

    def route(self, input_type: str) -> str:
        """``query`` or ``document`` for an input type (query, document or default); the graph serves
        both for a symmetric model. ValueError when a default-less Router model gets no input type."""
        if self.query is None:
            return "document"
        if input_type in ROUTES:
            return input_type
        if self.default_route is None:
            raise ValueError("no default route")
        return self.default_route


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
    cosines: list[float] = []
    recalls: list[float] = []
    for ref, row in zip(reference, got):
        ri, rv = ref[1::2].astype(np.int64), ref[2::2]
        gi, gv = row[1::2].astype(np.int64), row[2::2]
        same += int(np.array_equal(np.sort(ri), np.sort(gi)))
        common, ra, ga = np.intersect1d(ri, gi, return_indices=True)
        if common.size:
            scale = max(float(np.abs(rv).max()), 1e-12)
            worst = max(worst, float(np.abs(rv[ra] - gv[ga]).max()) / scale)
        cosines.append(_cosine(rv[ra], gv[ga], rv, gv))
        recalls.append(_top_recall(ri, rv, gi, gv, TOP_K))
    n = max(1, len(cosines))
    return {
        "index_agreement": same / max(1, len(reference)), "max_rel_diff": worst,
        "min_cosine": min(cosines, default=1.0), "mean_cosine": sum(cosines) / n,
        "topk": float(TOP_K), "min_topk_recall": min(recalls, default=1.0), "topk_recall": sum(recalls) / n,
    }


def _cosine(ref_common: np.ndarray, got_common: np.ndarray, ref: np.ndarray, got: np.ndarray) -> float:
    """The cosine of two sparse vectors (their values at shared indices, and all their values)."""
    norms = float(np.linalg.norm(ref)) * float(np.linalg.norm(got))
    if norms == 0.0:
        return 1.0 if ref.size == got.size == 0 else 0.0
    return float(np.dot(ref_common.astype(np.float64), got_common)) / norms


def _top(idx: np.ndarray, vals: np.ndarray, k: int) -> np.ndarray:
    return idx[np.lexsort((idx, -vals))[:k]]


def _top_recall(ri: np.ndarray, rv: np.ndarray, gi: np.ndarray, gv: np.ndarray, k: int) -> float:
    """Of the reference's k highest-weighted terms, the share that are among the served k highest."""
    want = _top(ri, rv, k)
    if want.size == 0:
        return 1.0
    return float(np.intersect1d(want, _top(gi, gv, k)).size) / float(want.size)


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
    gates = frozenset({"min_index_agreement", "max_rel_diff", "min_cosine", "min_mean_cosine", "min_topk_recall",
                       "min_mean_topk_recall"})
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
        if s.data.get("router") is not None:
            spec = dataclasses.replace(spec, **_router(s.sub("router"), where))
        return spec

    def files(self, spec: Any) -> list[str]:
        query = spec.query if isinstance(spec, SparseSpec) else None
        return [] if query is None else sorted({query.weights_file, query.tokenizer_file})

    def attach(self, spec: Any, directory: Path) -> Any:
        """Load the query route's weights and tokenizer (a symmetric model has nothing to load)."""
        if not isinstance(spec, SparseSpec) or spec.query is None:
            return spec
        from embedrank.model.tokenize import TextTokenizer

        q = spec.query
        path = directory / q.weights_file
        try:
            weights = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ManifestError(f"{path}: not a readable .npy array ({exc}); re-export the model") from None
        if weights.shape != (spec.dimensions,) or weights.dtype != np.float32 or not np.isfinite(weights).all():
            raise ManifestError(f"{path}: must hold {spec.dimensions} finite float32 weights (it holds {weights.dtype} "
                                f"{weights.shape}); re-export the model")
        weights.setflags(write=False)
        tokenizer = TextTokenizer(os.fspath(directory / q.tokenizer_file), max_tokens=q.max_tokens, with_type_ids=False,
                                  add_special_tokens=q.add_special_tokens)
        if tokenizer.vocab_size > spec.dimensions:
            raise ManifestError(f"{directory / q.tokenizer_file}: {tokenizer.vocab_size} tokens, over the "
                                f"{spec.dimensions} query weights; re-export the model")
        return dataclasses.replace(spec, query=dataclasses.replace(q, weights=weights, tokenizer=tokenizer))

    def check_inputs(self, inputs: Sequence[Any], *, queries: int, where: str) -> None:
        if not all(isinstance(t, str) and t for t in inputs):
            raise ManifestError(f"{where}: self_check.inputs of a sparse model must be texts")
        if not 0 <= queries <= len(inputs):
            raise ManifestError(f"{where}: self_check.queries must be between 0 and the number of inputs")

    def self_check_rows(
        self, spec: Any, inputs: Sequence[Any], tokenizer: TextTokenizer, runtime: Runtime, *, queries: int
    ) -> list[np.ndarray]:
        """The first ``queries`` inputs through the query route (as served), the rest through the graph."""
        if queries and (not isinstance(spec, SparseSpec) or spec.query is None):
            raise ManifestError("self check: self_check.queries names query texts, but the model has no query "
                                "route (sparse.router.query); re-export the model")
        rows: list[np.ndarray] = []
        if queries:
            assert isinstance(spec, SparseSpec) and spec.query is not None
            _, qtok = spec.query.loaded()
            seqs, _ = qtok.encode(list(inputs[:queries]), truncate=Truncate.END, field="self_check.inputs")
            rows = [flat_pairs(spec.query.row(seq), spec.max_active_dims) for seq in seqs]
        return rows + super().self_check_rows(spec, inputs[queries:], tokenizer, runtime, queries=0)

    def self_check_row(self, spec: Any, output: np.ndarray, item: Any, seq: TokenSeq) -> np.ndarray:
        return flat_pairs(output[0], spec.max_active_dims if isinstance(spec, SparseSpec) else None)

    def measure(self, reference: Any, got: Any, *, queries: int) -> dict[str, float]:
        return compare(reference, got)

    def warm_up_inputs(self, max_tokens: int) -> tuple[str, str]:
        return "warm up " * (max_tokens // 2), "warm up"


def _router(r: Reader, where: str) -> dict[str, Any]:
    """``sparse.router``: {"query": {"type": "static", "weights": ..., "tokenizer": {...}}, "document": "graph",
    "default_route": "document" | "query" | null}."""
    q = r.sub("query")
    kind = q.get("type", str)
    if kind != "static" or r.get("document", str) != "graph":
        raise ManifestError(f"{where}: sparse.router serves a static query route and the graph as the document "
                            f"route (query.type 'static', document 'graph'); re-export the model")
    t = q.sub("tokenizer")
    route = StaticRoute(
        weights_file=q.get("weights", str), tokenizer_file=t.get("file", str), max_tokens=t.get("max_tokens", int),
        add_special_tokens=t.get("add_special_tokens", bool),
    )
    if route.max_tokens < 1:
        raise ManifestError(f"{where}: sparse.router.query.tokenizer.max_tokens must be positive")
    for name in (route.weights_file, route.tokenizer_file):
        if not name or Path(name).name != name:
            raise ManifestError(f"{where}: sparse.router.query names {name!r}, not a file of the version folder")
    default = r.get("default_route", str, None)
    if default is not None and default not in ROUTES:
        raise ManifestError(f"{where}: sparse.router.default_route must be one of {ROUTES} or null")
    return {"query": route, "default_route": default}


SPARSE = SparseKind()
