"""Hybrid models (BGE-M3, FlagEmbedding's BGEM3FlagModel): a dense vector, lexical weights and ColBERT
vectors from one forward pass.

The graph runs the encoder once and outputs the three heads: ``dense_embedding`` (the normalized CLS
vector, batch x dim), ``token_weights`` (ReLU(sparse_linear(h)) per token, batch x tokens) and
``colbert_vectors`` (normalize(colbert_linear(h[:, 1:])), batch x tokens-1 x dim). What FlagEmbedding
does after the model is here, for the server and the exporter's parity alike: a text's lexical weights
are the largest weight of each token id, less the special tokens (cls, eos, pad, unk) and zeros; its
ColBERT vectors are the rows of its real tokens after the first; and the scores of compute_score.

A self-check row is [dim, the dense vector, pairs, (id, weight) by id, colbert dim, the vectors row by row].
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from typing import Any

import numpy as np

from embedrank.model.errors import ManifestError
from embedrank.model.jsonread import Reader
from embedrank.model.kinds.base import Kind, ModelKind
from embedrank.model.numeric import cosines
from embedrank.model.runtime.base import TokenSeq

DENSE, WEIGHTS, COLBERT = "dense_embedding", "token_weights", "colbert_vectors"
# compute_score's weights_for_different_modes when it is given none: dense, sparse, ColBERT alike.
DEFAULT_WEIGHTS = (1.0, 1.0, 1.0)


class HybridScore(enum.Enum):
    """Which of compute_score's figures Rerank returns as a document's score."""

    WEIGHTED = "weighted"  # colbert+sparse+dense: (w0 dense + w1 sparse + w2 colbert) / (w0 + w1 + w2)
    DENSE = "dense"
    SPARSE = "sparse"
    COLBERT = "colbert"
    SPARSE_DENSE = "sparse+dense"  # (w0 dense + w1 sparse) / (w0 + w1)


@dataclasses.dataclass(frozen=True)
class HybridSpec:
    dimensions: int  # the dense vector's
    colbert_dimensions: int
    vocab_size: int  # the lexical weights' index range
    unused_token_ids: tuple[int, ...]  # never in lexical weights (FlagEmbedding: cls, eos, pad, unk)
    prompts: dict[str, str]
    default_prompt_name: str | None


def lexical_weights(weights: np.ndarray, ids: np.ndarray, unused: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """One text's token weights -> (ids, weights), highest weight first (ties: lower id first): each id's
    largest weight, the unused ids and non-positive weights left out (M3Embedder._process_token_weights)."""
    keep = (weights > 0) & ~np.isin(ids, np.asarray(unused, dtype=np.int64))
    ids, weights = ids[keep], weights[keep].astype(np.float32)
    if ids.size == 0:
        return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.float32)
    order = np.argsort(ids, kind="stable")
    ids, weights = ids[order], weights[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    uniq, best = ids[starts], np.maximum.reduceat(weights, starts)
    rank = np.lexsort((uniq, -best))
    return uniq[rank].astype(np.uint32), best[rank].astype(np.float32)


def text_outputs(out: dict[str, np.ndarray], row: int, seq: TokenSeq, unused: Sequence[int]) -> tuple[
    np.ndarray, tuple[np.ndarray, np.ndarray], np.ndarray
]:
    """A batch row's three results: the dense vector, the lexical weights and the ColBERT vectors (one
    per real token after the first: M3Embedder._process_colbert_vecs keeps tokens_num - 1)."""
    n = seq.length
    sparse = lexical_weights(out[WEIGHTS][row, :n], seq.ids, unused)
    return out[DENSE][row], sparse, out[COLBERT][row, : n - 1]


def sparse_score(q: tuple[np.ndarray, np.ndarray], d: tuple[np.ndarray, np.ndarray]) -> float:
    """The lexical matching score: the sum over shared ids of the two weights' product."""
    _, qi, di = np.intersect1d(q[0], d[0], assume_unique=True, return_indices=True)
    return float(np.dot(q[1][qi].astype(np.float64), d[1][di]))


def colbert_score(q: np.ndarray, d: np.ndarray) -> float:
    """compute_colbert_score: each query vector's best dot product with a document vector, averaged."""
    if q.shape[0] == 0 or d.shape[0] == 0:
        return 0.0
    return float((q.astype(np.float64) @ d.T.astype(np.float64)).max(axis=1).sum() / q.shape[0])


def scores(q: tuple[np.ndarray, Any, np.ndarray], d: tuple[np.ndarray, Any, np.ndarray],
           weights: Sequence[float]) -> dict[HybridScore, float]:
    """compute_score's figures for one (query, document) pair from their text_outputs."""
    dense = float(np.dot(q[0].astype(np.float64), d[0]))
    sparse, colbert = sparse_score(q[1], d[1]), colbert_score(q[2], d[2])
    w0, w1, w2 = weights
    return {
        HybridScore.DENSE: dense, HybridScore.SPARSE: sparse, HybridScore.COLBERT: colbert,
        HybridScore.SPARSE_DENSE: (w1 * sparse + w0 * dense) / (w1 + w0),
        HybridScore.WEIGHTED: (w2 * colbert + w1 * sparse + w0 * dense) / (w0 + w1 + w2),
    }


def flat_row(dense: np.ndarray, sparse: tuple[np.ndarray, np.ndarray], colbert: np.ndarray) -> np.ndarray:
    """One text's three results as the self check records them (the lexical weights by id)."""
    order = np.argsort(sparse[0])
    pairs = np.empty(2 * order.size, dtype=np.float64)
    pairs[0::2], pairs[1::2] = sparse[0][order], sparse[1][order]
    return np.concatenate([[dense.shape[0]], dense, [order.size], pairs, [colbert.shape[1]], colbert.reshape(-1)])


def split_row(row: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], np.ndarray]:
    """flat_row's inverse; ValueError for a row that is not one."""
    dim = int(row[0])
    dense = row[1 : 1 + dim]
    at = 1 + dim
    n = int(row[at])
    pairs = row[at + 1 : at + 1 + 2 * n]
    at += 1 + 2 * n
    cdim = int(row[at])
    rest = row[at + 1 :]
    if dense.shape[0] != dim or pairs.shape[0] != 2 * n or cdim < 1 or rest.size % cdim:
        raise ValueError("not a hybrid self-check row")
    return dense, (pairs[0::2].astype(np.int64), pairs[1::2]), rest.reshape(-1, cdim)


def compare(reference: Sequence[np.ndarray], got: Sequence[np.ndarray]) -> dict[str, float]:
    """The figures of the three outputs: dense cosine, the share of texts with the same lexical ids and the
    largest weight difference relative to the text's largest weight, ColBERT token cosine and how many
    texts got another number of ColBERT vectors."""
    dense_ref, dense_got, same, worst, tok_min, tok_sum, tokens, mismatched = [], [], 0, 0.0, 1.0, 0.0, 0, 0
    for ref_row, got_row in zip(reference, got):
        try:
            rd, (ri, rv), rc = split_row(np.asarray(ref_row, dtype=np.float64))
            gd, (gi, gv), gc = split_row(np.asarray(got_row, dtype=np.float64))
        except (ValueError, IndexError):
            mismatched += 1
            continue
        if rd.shape != gd.shape or rc.shape != gc.shape:
            mismatched += 1
            continue
        dense_ref.append(rd)
        dense_got.append(gd)
        same += int(np.array_equal(ri, gi))
        common, ra, ga = np.intersect1d(ri, gi, return_indices=True)
        if common.size:
            worst = max(worst, float(np.abs(rv[ra] - gv[ga]).max()) / max(float(rv.max()), 1e-12))
        if rc.size:
            cos = cosines(rc, gc)
            tok_min, tok_sum, tokens = min(tok_min, float(cos.min())), tok_sum + float(cos.sum()), tokens + cos.size
    dense = cosines(np.asarray(dense_ref), np.asarray(dense_got)) if dense_ref else np.zeros(1)
    n = max(1, len(reference))
    return {
        "min_cosine": float(dense.min()), "mean_cosine": float(dense.mean()),
        "index_agreement": same / n, "max_rel_diff": worst,
        "min_token_cosine": tok_min, "mean_token_cosine": tok_sum / max(tokens, 1), "count_mismatch": float(mismatched),
    }


class HybridKind(Kind):
    kind = ModelKind.HYBRID
    output = DENSE
    rpc = "HybridEmbed.EncodeHybrid"
    gates = frozenset({"min_cosine", "min_index_agreement", "max_rel_diff", "min_token_cosine", "max_count_mismatch"})
    ragged = True

    def parse(self, r: Reader, *, outputs: Sequence[str], where: str) -> HybridSpec:
        h = r.sub(self.section)
        spec = HybridSpec(
            dimensions=h.get("dimensions", int),
            colbert_dimensions=h.get("colbert_dimensions", int),
            vocab_size=h.get("vocab_size", int),
            unused_token_ids=tuple(int(i) for i in h.get("unused_token_ids", list)),
            prompts=dict(h.get("prompts", dict, {})),
            default_prompt_name=h.get("default_prompt_name", str, None),
        )
        missing = [o for o in (DENSE, WEIGHTS, COLBERT) if o not in outputs]
        if missing:
            raise ManifestError(f"{where}: a hybrid graph must output {', '.join(missing)}; re-export the model")
        if min(spec.dimensions, spec.colbert_dimensions, spec.vocab_size) < 1:
            raise ManifestError(f"{where}: hybrid.dimensions, colbert_dimensions and vocab_size must be positive")
        return spec

    def check_inputs(self, inputs: Sequence[Any], *, queries: int, where: str) -> None:
        if not all(isinstance(t, str) and t for t in inputs):
            raise ManifestError(f"{where}: self_check.inputs of a hybrid model must be texts")

    def self_check_row(self, spec: Any, output: np.ndarray, item: Any, seq: TokenSeq) -> np.ndarray:
        raise TypeError("HybridKind reads all three outputs: self_check_rows")  # a bug, not an input

    def self_check_rows(self, spec: Any, inputs: Sequence[Any], tokenizer: Any, runtime: Any, *,
                        queries: int) -> list[np.ndarray]:
        unused = spec.unused_token_ids if isinstance(spec, HybridSpec) else ()
        rows = []
        for seq in self.self_check_seqs(spec, inputs, tokenizer):
            rows.append(flat_row(*text_outputs(runtime.run([seq]), 0, seq, unused)))
        return rows

    def measure(self, reference: Any, got: Any, *, queries: int) -> dict[str, float]:
        return compare(reference, got)

    def warm_up_inputs(self, max_tokens: int) -> tuple[str, str]:
        return "warm up " * (max_tokens // 2), "warm up"


HYBRID = HybridKind()
