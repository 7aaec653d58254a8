"""Exporting hybrid (BGE-M3) models: a checkpoint in the layout FlagEmbedding saves and BAAI/bge-m3 ships,
an XLM-R encoder beside ``sparse_linear.pt`` (Linear(hidden, 1)) and ``colbert_linear.pt``
(Linear(hidden, colbert dim)). One graph runs the encoder once and outputs the three heads (the
dense CLS vector, the per-token lexical weights, the ColBERT vectors; model/kinds/hybrid.py).

The reference is FlagEmbedding's own BGEM3FlagModel (the ``bgem3`` extra): its encode() for the three
outputs, and its compute_score() for the scores Rerank serves, pair by pair (batched, compute_score lets
the zero vectors of a padded document into ColBERT's max, so a pair's score depends on its batch).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from embedrank.exporter import corpus, verify
from embedrank.exporter.deps import need
from embedrank.exporter.graphrun import GraphRunner
from embedrank.exporter.kinds.base import ExportKind, Loaded, Measured
from embedrank.exporter.options import ExportOptions
from embedrank.model.errors import ConfigError
from embedrank.model.kinds import ModelKind
from embedrank.model.kinds.hybrid import COLBERT, DENSE, DEFAULT_WEIGHTS, WEIGHTS, HybridScore, flat_row, scores
from embedrank.model.kinds.hybrid import compare as compare_rows
from embedrank.model.kinds.hybrid import text_outputs
from embedrank.model.manifest import SelfCheck
from embedrank.model.tokenize import Truncate

HEADS = ("sparse_linear.pt", "colbert_linear.pt")
INSTALL = "pip install '.[export,bgem3]' (FlagEmbedding, BGE-M3's reference library)"
_SCORE_KEYS = {HybridScore.DENSE: "dense", HybridScore.SPARSE: "sparse", HybridScore.COLBERT: "colbert",
               HybridScore.SPARSE_DENSE: "sparse+dense", HybridScore.WEIGHTED: "colbert+sparse+dense"}


class FlagReference:
    """BGEM3FlagModel, as users load it on a CPU (fp32)."""

    def __init__(self, path: str) -> None:
        try:
            from FlagEmbedding import BGEM3FlagModel
        except ImportError as exc:
            raise ConfigError(f"{path}: a BGE-M3 checkpoint is verified against FlagEmbedding ({exc}); install it "
                              f"with: {INSTALL}") from None
        logging.getLogger("FlagEmbedding").setLevel(logging.WARNING)
        self.model = BGEM3FlagModel(path, use_fp16=False, devices="cpu")
        self.version = _dist_version("FlagEmbedding")

    def eval(self) -> FlagReference:
        return self

    def rows(self, texts: list[str], max_tokens: int) -> list[np.ndarray]:
        """encode(return_dense, return_sparse, return_colbert_vecs) as self-check rows."""
        out = self.model.encode(texts, batch_size=256, max_length=max_tokens, return_dense=True, return_sparse=True,
                                return_colbert_vecs=True)
        rows = []
        for dense, weights, colbert in zip(out["dense_vecs"], out["lexical_weights"], out["colbert_vecs"]):
            ids = np.array([int(k) for k in weights], dtype=np.int64)
            values = np.array([float(v) for v in weights.values()], dtype=np.float64)
            rows.append(flat_row(np.asarray(dense, dtype=np.float64), (ids, values), np.asarray(colbert)))
        return rows

    def scores(self, pairs: list[tuple[str, str]], max_tokens: int) -> dict[HybridScore, np.ndarray]:
        """compute_score for each pair alone (a batch of one: no padding), with its default weights."""
        got: dict[HybridScore, list[float]] = {k: [] for k in _SCORE_KEYS}
        for pair in pairs:
            out = self.model.compute_score([pair], batch_size=2, max_query_length=max_tokens,
                                           max_passage_length=max_tokens)
            for k, name in _SCORE_KEYS.items():
                got[k].append(float(out[name][0]))
        return {k: np.asarray(v) for k, v in got.items()}


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def served(runner: GraphRunner, unused: list[int], texts: list[str], *, batch: int = 8) -> list[tuple[Any, Any, Any]]:
    """The three outputs of each text as the server computes them: its tokenizer, batches of ``batch``."""
    seqs, _ = runner.tokenizer.encode(texts, truncate=Truncate.END, field="texts")
    out: list[tuple[Any, Any, Any]] = []
    for start in range(0, len(seqs), batch):
        part = seqs[start : start + batch]
        result = runner.runtime.run(part)
        out.extend(text_outputs(result, i, seq, unused) for i, seq in enumerate(part))
    return out


def score_pairs() -> list[tuple[str, str]]:
    """Three queries against ten documents of the parity set (short to past any max length)."""
    pairs = corpus.parity_pairs()
    return [p for i, p in enumerate(pairs) if i % (len(pairs) // 3) < 10]


class HybridExport(ExportKind):
    kind = ModelKind.HYBRID
    pairs = False

    def recognises(self, path: Path) -> bool:
        return all((path / head).is_file() for head in HEADS)

    def axes_of(self, output: str) -> dict[int, str]:
        return {DENSE: {0: "batch"}, WEIGHTS: {0: "batch", 1: "sequence"},
                COLBERT: {0: "batch", 1: "colbert_tokens"}}[output]

    def load(self, st: Any, path_or_id: str, *, model_kwargs: dict[str, Any], st_kwargs: dict[str, Any]) -> Loaded:
        torch = need("torch")
        path = Path(path_or_id)
        if not self.recognises(path):
            raise ConfigError(f"{path_or_id}: a hybrid (BGE-M3) checkpoint is a local folder with {' and '.join(HEADS)}")
        model = st.SentenceTransformer(path_or_id, device="cpu", model_kwargs=model_kwargs, **st_kwargs)
        transformer = model[0]
        if type(transformer).__name__ != "Transformer":
            raise ConfigError(f"{path_or_id}: the first module is {type(transformer).__name__}, not a Transformer")
        hf = transformer.auto_model
        hidden = int(hf.config.hidden_size)
        heads = {}
        for head in HEADS:
            try:
                state = torch.load(path / head, map_location="cpu", weights_only=True)
                weight = state["weight"]
                linear = torch.nn.Linear(hidden, int(weight.shape[0]))
                linear.load_state_dict(state)
            except (OSError, RuntimeError, KeyError, TypeError, AttributeError) as exc:
                raise ConfigError(f"{path / head}: not a Linear({hidden}, n) state dict as FlagEmbedding saves "
                                  f"it ({exc})") from None
            heads[head.split("_")[0]] = linear.eval()
        if heads["sparse"].out_features != 1:
            raise ConfigError(f"{path / HEADS[0]}: Linear({hidden}, {heads['sparse'].out_features}); BGE-M3's is "
                              f"Linear({hidden}, 1)")
        tokenizer = model.tokenizer
        special = tokenizer.special_tokens_map
        unused = sorted({int(tokenizer.convert_tokens_to_ids(special[t]))
                         for t in ("cls_token", "eos_token", "pad_token", "unk_token") if t in special})
        info = {
            "dimensions": hidden,
            "colbert_dimensions": int(heads["colbert"].out_features),
            "vocab_size": int(hf.config.vocab_size),
            "unused_token_ids": unused,
            "prompts": {k: v for k, v in (model.prompts or {}).items() if v},
            "default_prompt_name": model.default_prompt_name,
        }
        encoder = torch.nn.ModuleDict({"model": hf, "sparse": heads["sparse"], "colbert": heads["colbert"]})
        return Loaded(encoder, FlagReference(path_or_id), hf, tokenizer,
                      int(model.max_seq_length or tokenizer.model_max_length), info)

    def wrapper(self, model: Any) -> tuple[Any, list[str]]:
        torch = need("torch")
        functional = torch.nn.functional

        class ThreeHeads(torch.nn.Module):  # type: ignore[misc, name-defined]
            """EncoderOnlyEmbedderM3ModelForInference.forward with all three outputs (normalize_embeddings)."""

            def __init__(self) -> None:
                super().__init__()
                self.heads = model

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
                h = self.heads["model"](input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
                dense = functional.normalize(h[:, 0], dim=-1)
                weights = torch.relu(self.heads["sparse"](h)).squeeze(-1)
                colbert = self.heads["colbert"](h[:, 1:]) * attention_mask[:, 1:][:, :, None].to(h.dtype)
                return dense, weights, functional.normalize(colbert, dim=-1)

        return ThreeHeads().eval(), [DENSE, WEIGHTS, COLBERT]

    def thresholds(self, opts: ExportOptions) -> dict[str, float]:
        if opts.lossy:
            raise ConfigError("hybrid (BGE-M3) models are exported exact (fp32, --optimize O1/O2 or none): the "
                              "gate for int8, bf16 and O3/O4 is not measured yet")
        floor = opts.min_cosine if opts.min_cosine is not None else 0.99999
        return {"min_cosine": floor, "min_token_cosine": floor, "min_index_agreement": 1.0, "max_rel_diff": 1e-4,
                "max_count_mismatch": 0.0, "max_hybrid_score_diff": 1e-4}

    def failures(self, report: dict[str, Any], limits: dict[str, float]) -> list[str]:
        p, bad = report["parity"], []
        for key, figure, label in (("min_cosine", "min_cosine", "dense min cosine"),
                                   ("min_token_cosine", "min_token_cosine", "ColBERT min token cosine"),
                                   ("min_index_agreement", "index_agreement", "share of texts with the same lexical ids")):
            if p[figure] < limits[key]:
                bad.append(f"parity {label} {p[figure]:.6f} < {limits[key]}")
        if p["max_rel_diff"] > limits["max_rel_diff"]:
            bad.append(f"parity lexical weight max relative diff {p['max_rel_diff']:.2e} > {limits['max_rel_diff']}")
        if p["count_mismatch"] > limits["max_count_mismatch"]:
            bad.append(f"parity: {p['count_mismatch']:.0f} texts with another ColBERT vector count than FlagEmbedding's")
        worst = max(report["scores"]["max_abs_diff"].values())
        if worst > limits["max_hybrid_score_diff"]:
            bad.append(f"compute_score parity: max abs score diff {worst:.2e} > {limits['max_hybrid_score_diff']}")
        return bad

    def measure(self, source: Any, runner: GraphRunner, texts: list[str], *, fidelity: bool) -> Measured:
        ref: FlagReference = source.reference
        unused = source.info["unused_token_ids"]
        items = corpus.parity_texts()
        got = [flat_row(*t) for t in served(runner, unused, items)]
        parity = {"items": len(items), **compare_rows(ref.rows(items, source.max_tokens), got)}
        pairs = score_pairs()
        expected = ref.scores(pairs, source.max_tokens)
        outs = {t: o for t, o in zip(sorted({x for p in pairs for x in p}),
                                     served(runner, unused, sorted({x for p in pairs for x in p})))}
        mine = [scores(outs[q], outs[d], DEFAULT_WEIGHTS) for q, d in pairs]
        diffs = {k.value: float(np.abs(expected[k] - np.array([m[k] for m in mine])).max()) for k in expected}
        report = {"reference_library": f"FlagEmbedding {ref.version}", "parity": parity,
                  "scores": {"pairs": len(pairs), "max_abs_diff": diffs}}
        return Measured(report, dict(source.info))

    def calibration_items(self, texts: list[str]) -> list[Any]:
        return list(texts)

    def self_check(self, source: Any, gate: dict[str, float]) -> SelfCheck:
        texts = verify.self_check_texts()
        rows = source.reference.rows(texts, source.max_tokens)
        return SelfCheck(tuple(texts), tuple(tuple(float(v) for v in r) for r in rows), gate)


HYBRID = HybridExport()
