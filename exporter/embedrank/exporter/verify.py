"""Step 5: measure the graph against sentence-transformers, as the server will run it.

- parity: the fixed built-in texts (or pairs), every export; fails below the threshold.
- fidelity: a corpus of real text (>= 1,000 items) for optimized/quantized variants:
  min/mean cosine and top-10 neighbour overlap (embeddings); top-1 agreement and
  Kendall's tau per query (rerankers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from embedrank.exporter import corpus
from embedrank.exporter.graphrun import GraphRunner
from embedrank.model.kinds.rerank import Activation, activate
from embedrank.model.numeric import cosines

if TYPE_CHECKING:
    from embedrank.exporter.source import Source


def reference_embeddings(source: Source, texts: list[str]) -> np.ndarray:
    # prompt="": the graph is measured on the texts as given (a default_prompt_name would prefix them
    # here but not in the runner; the server adds prompts before tokenizing, outside the graph).
    out = source.reference.encode(texts, prompt="", batch_size=32, convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(out, dtype=np.float32)


def reference_logits(source: Source, pairs: list[tuple[str, str]]) -> np.ndarray:
    own = getattr(source.reference, "raw_logits", None)  # the importer's reference (no torch): raw logits
    if own is not None:
        return np.asarray(own(pairs), dtype=np.float32).reshape(len(pairs), -1)
    torch = __import__("torch")
    logits = source.reference.predict(pairs, batch_size=32, activation_fn=torch.nn.Identity(), convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(logits, dtype=np.float32).reshape(len(pairs), -1)


def embedding_parity(source: Source, runner: GraphRunner) -> dict[str, Any]:
    texts = corpus.parity_texts()
    ref = reference_embeddings(source, texts)
    got = runner.run(texts, "sentence_embedding")
    cos = cosines(ref, got)
    return {
        "items": len(texts),
        "min_cosine": float(cos.min()),
        "mean_cosine": float(cos.mean()),
        "max_abs_diff": float(np.abs(ref - got).max()),
    }


def _rankings_agree(ref: np.ndarray, got: np.ndarray, queries: int) -> tuple[bool, float, float]:
    """(identical ranking everywhere, top-1 agreement, mean Kendall tau) over equal-size query groups."""
    ref_g, got_g = ref.reshape(queries, -1), got.reshape(queries, -1)
    same = all(np.array_equal(np.argsort(-r, kind="stable"), np.argsort(-g, kind="stable")) for r, g in zip(ref_g, got_g))
    top1 = float(np.mean([np.argmax(r) == np.argmax(g) for r, g in zip(ref_g, got_g)]))
    taus = [kendall_tau(r, g) for r, g in zip(ref_g, got_g)]
    return same, top1, float(np.nanmean(taus))


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-b (ties counted as scipy.stats.kendalltau does; NaN when one side is constant),
    in numpy: the torch-free import needs no scipy."""
    i, j = np.triu_indices(len(a), k=1)
    da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    denom = np.sqrt(float(np.count_nonzero(da)) * float(np.count_nonzero(db)))
    return float((da * db).sum() / denom) if denom else float("nan")


def rerank_parity(source: Source, runner: GraphRunner) -> dict[str, Any]:
    pairs = corpus.parity_pairs()
    ref = reference_logits(source, pairs)
    got = runner.run(pairs, "logits")
    queries = len({q for q, _ in pairs})
    same, top1, tau = _rankings_agree(ref[:, 0], got[:, 0], queries)
    return {
        "items": len(pairs),
        "max_abs_diff": float(np.abs(ref - got).max()),
        "max_score_diff": _score_diff(source, ref, got),
        "same_ranking": same,
        "top1_agreement": top1,
        "kendall_tau": tau,
    }


def _topk(x: np.ndarray, k: int) -> np.ndarray:
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    return np.argsort(-sims, axis=1)[:, :k]


def embedding_fidelity(source: Source, runner: GraphRunner, texts: list[str]) -> dict[str, Any]:
    ref = reference_embeddings(source, texts)
    got = runner.run(texts, "sentence_embedding")
    cos = cosines(ref, got)
    k = 10
    a, b = _topk(ref, k), _topk(got, k)
    overlap = np.mean([len(set(x) & set(y)) / k for x, y in zip(a, b)])
    return {
        "items": len(texts),
        "min_cosine": float(cos.min()),
        "mean_cosine": float(cos.mean()),
        "top10_overlap": float(overlap),
    }


def rerank_fidelity(source: Source, runner: GraphRunner, texts: list[str], *, queries: int = 50) -> dict[str, Any]:
    per_query = max(2, len(texts) // queries)
    docs = texts[: queries * per_query]
    qs = corpus.sentences(queries, min_chars=20)
    pairs = [(qs[i], docs[i * per_query + j]) for i in range(queries) for j in range(per_query)]
    ref_all = reference_logits(source, pairs)
    got_all = runner.run(pairs, "logits")
    ref, got = ref_all[:, 0], got_all[:, 0]
    _, top1, tau = _rankings_agree(ref, got, queries)
    return {"items": len(pairs), "queries": queries, "top1_agreement": top1, "kendall_tau": tau,
            "max_abs_diff": float(np.abs(ref - got).max()), "max_score_diff": _score_diff(source, ref_all, got_all)}


def _score_diff(source: Source, ref: np.ndarray, got: np.ndarray) -> float:
    """Largest difference of the scores callers get: logits through the model's activation."""
    activation = Activation(source.info["activation"])
    return float(np.abs(activate(ref, activation) - activate(got, activation)).max())


def calibrate_ranges(runner: GraphRunner, texts: list[str]) -> dict[str, list[float]]:
    """Per-dimension min/max of the served embeddings, for int8/uint8 output."""
    return ranges_of(runner.run(texts, "sentence_embedding"))


def ranges_of(rows: np.ndarray) -> dict[str, list[float]]:
    """Per-dimension min/max of rows x dimensions vectors: the manifest's ``ranges``."""
    return {"min": [float(v) for v in rows.min(axis=0)], "max": [float(v) for v in rows.max(axis=0)]}


def rerank_calibration_pairs(texts: list[str], *, queries: int = 50) -> list[tuple[str, str]]:
    """(query, document) pairs from the calibration texts, as rerank_fidelity builds them."""
    per_query = max(2, len(texts) // queries)
    qs = corpus.sentences(queries, min_chars=20)
    return [(qs[i // per_query % queries], doc) for i, doc in enumerate(texts)]


def self_check_texts() -> list[str]:
    """The load-time self check's texts: short, a sentence, a paragraph, one past any max length, non-ASCII."""
    texts = corpus.parity_texts()
    return [texts[0], texts[2], texts[4], texts[8], texts[13], texts[-1]]


def self_check_pairs() -> tuple[list[tuple[str, str]], int]:
    """The load-time self check's pairs: two queries, the same four documents each."""
    texts = corpus.parity_texts()
    docs = [texts[4], texts[8], texts[9], texts[13]]
    queries = ["How do I define a function?", "What does the import statement do?"]
    return [(q, d) for q in queries for d in docs], len(queries)
