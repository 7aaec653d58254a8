"""Exporting multi-vector (ColBERT) models: a MultiVectorEncoder (Transformer -> Dense ->
MultiVectorMask -> token-level Normalize) or, with ``--kind multi-vector``, a plain checkpoint
(sentence-transformers then adds a 128-wide Dense, the mask and Normalize). The graph holds
Transformer, Dense and Normalize and outputs ``token_embeddings`` (batch x tokens x dim);
MultiVectorMask's work (query expansion positions, the skiplist) is the manifest's
``multi-vector`` section, applied by embedrank.model.kinds.multivector."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from embedrank.exporter import corpus, verify
from embedrank.exporter.deps import need
from embedrank.exporter.graphrun import GraphRunner
from embedrank.exporter.kinds.base import ExportKind, Loaded, Measured
from embedrank.exporter.optimize import OptimizeLevel
from embedrank.exporter.options import ExportOptions
from embedrank.exporter.quantize import QuantizePreset
from embedrank.model.errors import ConfigError
from embedrank.model.jsonread import Reader
from embedrank.model.kinds import ModelKind
from embedrank.model.kinds.multivector import MULTI_VECTOR, MultiVectorSpec, Task, encode, kept, maxsim
from embedrank.model.manifest import SelfCheck
from embedrank.model.tokenize import Truncate

_SUPPORTED = ("Transformer", "Dense", "MultiVectorMask", "Normalize")


def _recognised(path: Path) -> bool:
    cfg = path / "config_sentence_transformers.json"
    if cfg.is_file() and json.loads(cfg.read_text()).get("model_type") in ("MultiVectorEncoder", "ColBERT"):
        return True
    modules = path / "modules.json"
    return modules.is_file() and any("MultiVectorMask" in str(m.get("type")) for m in json.loads(modules.read_text()))


def spec_of(info: dict[str, Any]) -> MultiVectorSpec:
    spec: MultiVectorSpec = MULTI_VECTOR.parse(Reader({MULTI_VECTOR.section: info}, "export"),
                                               outputs=[MULTI_VECTOR.output], where="export")
    return spec


def prompt(info: dict[str, Any], task: Task) -> str:
    """The prompt encode_query / encode_document prepend (the first of document, passage, corpus)."""
    prompts: dict[str, str] = info["prompts"]
    if task is Task.QUERY:
        return prompts.get("query", "")
    if task is Task.DOCUMENT:
        return next((prompts[p] for p in ("document", "passage", "corpus") if p in prompts), "")
    name = info.get("default_prompt_name")
    return prompts.get(name, "") if name else ""


def reference_vectors(source: Any, texts: list[str], task: Task) -> list[np.ndarray]:
    model = source.reference
    fn = {Task.QUERY: model.encode_query, Task.DOCUMENT: model.encode_document, Task.NONE: model.encode}[task]
    out = fn(texts, batch_size=32, convert_to_numpy=True, show_progress_bar=False)
    return [np.asarray(v, dtype=np.float32) for v in out]


def served_vectors(info: dict[str, Any], runner: GraphRunner, texts: list[str], task: Task, *, batch: int = 8) -> list[np.ndarray]:
    """What the server returns for these texts: its tokenizing, batches of ``batch``, its masks."""
    spec = spec_of(info)
    p = prompt(info, task)
    seqs, _ = encode(spec, runner.tokenizer, [p + t for t in texts], task, truncate=Truncate.END, field="texts")
    out: list[np.ndarray] = []
    for start in range(0, len(seqs), batch):
        part = seqs[start : start + batch]
        emb = runner.runtime.run(part)["token_embeddings"]
        out.extend(emb[i, : s.length][kept(spec, s, task)] for i, s in enumerate(part))
    return out


def compare(ref: list[np.ndarray], got: list[np.ndarray]) -> dict[str, Any]:
    """Token vectors of the same texts: the worst and the mean cosine over every token, and how many
    texts got another number of vectors."""
    worst, total, tokens, mismatched = 1.0, 0.0, 0, 0
    for r, g in zip(ref, got):
        if r.shape != g.shape:
            mismatched += 1
            continue
        if r.size:
            cos = (r * g).sum(1) / np.maximum(np.linalg.norm(r, axis=1) * np.linalg.norm(g, axis=1), 1e-12)
            worst = min(worst, float(cos.min()))
            total += float(cos.sum())
            tokens += int(cos.size)
    return {"min_token_cosine": worst, "mean_token_cosine": total / max(tokens, 1), "count_mismatch": mismatched}


def ranking_set() -> tuple[list[str], list[str]]:
    """16 queries (the first eight words of a middle sentence of a paragraph) and the corpus's paragraphs
    from the first of theirs to the last (47: near topics, each query's own among them)."""
    queries: list[str] = []
    docs: list[str] = []
    for paragraph in corpus.paragraphs()[40:]:
        parts = [p for p in re.split(r"(?<=[.!?])\s+(?=[A-Z])", paragraph) if len(p.split()) >= 8]
        if len(queries) < 16 and len(parts) >= 2:
            queries.append(" ".join(parts[len(parts) // 2].split()[:8]))
        docs.append(paragraph)
        if len(queries) == 16:
            break
    return queries, docs


def _scores(queries: list[np.ndarray], docs: list[np.ndarray], *, mean: bool) -> np.ndarray:
    return np.array([[maxsim(q, d, mean=mean) for d in docs] for q in queries], dtype=np.float64)


def _ranks(row: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(-row, kind="stable"), kind="stable").astype(np.float64)


def ranking(source: Any, runner: GraphRunner) -> dict[str, Any]:
    """MaxSim of the ranking set's queries against its documents, the library's vectors against the graph's:
    how often a query's best document is the same, the mean Spearman correlation of the rankings, and the
    largest score difference relative to the query's best score."""
    queries, docs = ranking_set()
    mean = source.info["similarity_fn"] == "meanmaxsim"
    ref = _scores(reference_vectors(source, queries, Task.QUERY), reference_vectors(source, docs, Task.DOCUMENT),
                  mean=mean)
    got = _scores(served_vectors(source.info, runner, queries, Task.QUERY),
                  served_vectors(source.info, runner, docs, Task.DOCUMENT), mean=mean)
    spearman = [float(np.corrcoef(_ranks(r), _ranks(g))[0, 1]) for r, g in zip(ref, got)]
    scale = np.maximum(np.abs(ref).max(axis=1, keepdims=True), 1e-12)
    return {
        "queries": len(queries),
        "documents": len(docs),
        "top1_agreement": float(np.mean(ref.argmax(axis=1) == got.argmax(axis=1))),
        "mean_spearman": float(np.mean(spearman)),
        "max_rel_score_diff": float((np.abs(ref - got) / scale).max()),
    }


def calibrate_ranges(info: dict[str, Any], runner: GraphRunner, texts: list[str]) -> dict[str, list[float]]:
    """Per-dimension min/max over every token vector served for the texts as queries (with their
    expansion vectors) and as documents, for int8/uint8 output (EncodeMultiVectorRequest.precision).
    The first 256 texts: already thousands of vectors (an embedding model calibrates on one a text)."""
    some = texts[:256]
    rows = [v for task in (Task.QUERY, Task.DOCUMENT) for v in served_vectors(info, runner, some, task)]
    return verify.ranges_of(np.concatenate(rows))


class MultiVectorExport(ExportKind):
    kind = ModelKind.MULTI_VECTOR
    pairs = False
    output_axes = {0: "batch", 1: "sequence"}

    def recognises(self, path: Path) -> bool:
        return _recognised(path)

    def load(self, st: Any, path_or_id: str, *, model_kwargs: dict[str, Any], st_kwargs: dict[str, Any]) -> Loaded:
        model = st.MultiVectorEncoder(path_or_id, device="cpu", model_kwargs=model_kwargs, **st_kwargs)
        reference = st.MultiVectorEncoder(path_or_id, device="cpu", **st_kwargs)
        names = [type(m).__name__ for m in model]
        if any(n not in _SUPPORTED for n in names) or names[0] != "Transformer" or model.token_pooling is not None:
            raise ConfigError(f"{path_or_id}: modules {names} are not supported ({', '.join(_SUPPORTED)} are; "
                              "no token pooling)")
        if model.truncate_dim is not None:
            raise ConfigError(f"{path_or_id}: truncate_dim is not supported for multi-vector models yet")
        transformer = model[0]
        tokenizer = model.tokenizer
        dims = int(transformer.auto_model.config.hidden_size)
        skiplist_ids: list[int] = []
        skiplist_tasks = ["document"]
        normalize = False
        for module in model:
            name = type(module).__name__
            if name == "Dense":
                dims = int(module.get_config_dict()["out_features"])
            elif name == "Normalize":
                if module.get_config_dict().get("module_input_name") != "token_embeddings":
                    raise ConfigError(f"{path_or_id}: a Normalize of {module.get_config_dict()} is not token-level")
                normalize = True
            elif name == "MultiVectorMask":
                if module.keep_only_token_ids:
                    raise ConfigError(f"{path_or_id}: MultiVectorMask keep_only_token_ids is not supported")
                ids = module._skiplist_ids
                skiplist_ids = [] if ids is None else [int(i) for i in ids.tolist()]
                skiplist_tasks = list(module.skiplist_tasks)
        expansion = None
        if transformer.query_expansion is not None:
            qe = transformer.query_expansion
            token_id = (tokenizer.convert_tokens_to_ids(qe["token"]) if qe.get("token") is not None
                        else tokenizer.mask_token_id if tokenizer.mask_token_id is not None else tokenizer.eos_token_id)
            if token_id is None:
                raise ConfigError(f"{path_or_id}: query expansion without a mask or EOS token in the tokenizer")
            expansion = {"strategy": qe["strategy"], "attend": bool(qe["attend"]), "token_id": int(token_id),
                         "length": int(qe["length"])}
        info = {
            "dimensions": dims,
            "query_length": transformer.query_length,
            "document_length": transformer.document_length,
            "expansion": expansion,
            "skiplist_ids": skiplist_ids,
            "skiplist_tasks": skiplist_tasks,
            "prompts": dict(model.prompts or {}),
            "default_prompt_name": model.default_prompt_name,
            "similarity_fn": str(model.similarity_fn_name),
            "normalize": normalize,
        }
        return Loaded(model, reference, transformer.auto_model, tokenizer,
                      int(model.max_seq_length or tokenizer.model_max_length), info)

    def wrapper(self, model: Any) -> tuple[Any, list[str]]:
        torch = need("torch")
        stages = [m for m in model if type(m).__name__ != "MultiVectorMask"]  # the mask is served outside

        class TokenEncoder(torch.nn.Module):  # type: ignore[misc, name-defined]
            def __init__(self) -> None:
                super().__init__()
                self.stages = torch.nn.ModuleList(stages)

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
                features = {"input_ids": input_ids, "attention_mask": attention_mask}
                if token_type_ids is not None:
                    features["token_type_ids"] = token_type_ids
                for stage in self.stages:
                    features = stage(features)
                return features["token_embeddings"]

        return TokenEncoder().eval(), ["token_embeddings"]

    def thresholds(self, opts: ExportOptions) -> dict[str, float]:
        """Exact graphs: every token vector as the library's. Lossy ones (int8, O3/O4, bf16): the token
        vectors close on average and none far off (MaxSim takes each query token's best match, so one
        bad vector moves a score), and MaxSim's ranking of the ranking set as the library's: the same
        best document (--min-top1) and rank correlation. A token vector is not averaged with others as a
        pooled embedding is, so int8's noise shows more in it: MiniLM's ColBERT with dynamic avx512-vnni
        weights had mean token cosine 0.987 (worst 0.925) where its pooled embedding has 0.993, with the
        same best document for 16/16 queries and rank correlation 0.990; the int8 floor is 0.98."""
        if not opts.lossy:
            floor = opts.min_cosine if opts.min_cosine is not None else 0.99999
            return {"min_token_cosine": floor, "max_count_mismatch": 0.0}
        if opts.quantize is not QuantizePreset.NONE or opts.precision == "int8":
            mean, least, spearman = 0.98, 0.9, 0.95
        elif opts.optimize is OptimizeLevel.O4 or opts.precision == "bf16":
            mean, least, spearman = 0.999, 0.99, 0.98
        else:  # O3: GELU approximated
            mean, least, spearman = 0.9999, 0.999, 0.99
        if opts.min_cosine is not None:
            mean = opts.min_cosine
        return {"min_mean_token_cosine": mean, "min_token_cosine": min(least, mean), "max_count_mismatch": 0.0,
                "min_maxsim_top1_agreement": opts.min_top1, "min_maxsim_spearman": spearman}

    def failures(self, report: dict[str, Any], limits: dict[str, float]) -> list[str]:
        bad = []
        sides = [("parity", side, report["parity"][side]) for side in ("query", "document", "encode")]
        if report.get("fidelity"):
            sides.append(("fidelity", "document", report["fidelity"]))
        for where, side, p in sides:
            if p["count_mismatch"] > limits["max_count_mismatch"]:
                bad.append(f"{where} ({side}): {p['count_mismatch']} texts with another vector count than the library's")
            if p["min_token_cosine"] < limits["min_token_cosine"]:
                bad.append(f"{where} ({side}) min token cosine {p['min_token_cosine']:.6f} < {limits['min_token_cosine']}")
            if "min_mean_token_cosine" in limits and p["mean_token_cosine"] < limits["min_mean_token_cosine"]:
                bad.append(f"{where} ({side}) mean token cosine {p['mean_token_cosine']:.6f} "
                           f"< {limits['min_mean_token_cosine']}")
        if "min_maxsim_top1_agreement" in limits:
            top1 = report["parity"]["ranking"]["top1_agreement"]
            if top1 < limits["min_maxsim_top1_agreement"]:
                bad.append(f"MaxSim top-1 agreement {top1:.3f} < {limits['min_maxsim_top1_agreement']} (--min-top1)")
        if "min_maxsim_spearman" in limits:
            rho = report["parity"]["ranking"]["mean_spearman"]
            if rho < limits["min_maxsim_spearman"]:
                bad.append(f"MaxSim ranking mean Spearman {rho:.3f} < {limits['min_maxsim_spearman']}")
        return bad

    def measure(self, source: Any, runner: GraphRunner, texts: list[str], *, fidelity: bool) -> Measured:
        items = corpus.parity_texts()
        parity: dict[str, Any] = {"items": len(items)}
        for side, task in (("query", Task.QUERY), ("document", Task.DOCUMENT), ("encode", Task.NONE)):
            parity[side] = compare(reference_vectors(source, items, task), served_vectors(source.info, runner, items, task))
        parity["ranking"] = ranking(source, runner)
        report: dict[str, Any] = {"parity": parity}
        if fidelity:  # the calibration corpus, as documents
            ref = reference_vectors(source, texts, Task.DOCUMENT)
            report["fidelity"] = {"items": len(texts),
                                  **compare(ref, served_vectors(source.info, runner, texts, Task.DOCUMENT))}
        return Measured(report, {**source.info, "ranges": calibrate_ranges(source.info, runner, texts)})

    def calibration_items(self, texts: list[str]) -> list[Any]:
        return list(texts)

    def self_check(self, source: Any, gate: dict[str, float]) -> SelfCheck:
        texts = verify.self_check_texts()[:4]
        inputs: list[tuple[str, str]] = []
        rows: list[tuple[float, ...]] = []
        for task in (Task.QUERY, Task.DOCUMENT):
            for text, vectors in zip(texts, reference_vectors(source, texts, task)):
                inputs.append((task.value, prompt(source.info, task) + text))
                rows.append((float(vectors.shape[1]), *map(float, vectors.reshape(-1))))
        return SelfCheck(tuple(inputs), tuple(rows), gate)


MULTI_VECTOR_EXPORT = MultiVectorExport()
