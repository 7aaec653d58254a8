"""Exporting multi-vector (ColBERT) models: a MultiVectorEncoder (Transformer -> Dense ->
MultiVectorMask -> token-level Normalize) or, with ``--kind multi-vector``, a plain checkpoint
(sentence-transformers then adds a 128-wide Dense, the mask and Normalize). The graph holds
Transformer, Dense and Normalize and outputs ``token_embeddings`` (batch x tokens x dim);
MultiVectorMask's work (query expansion positions, the skiplist) is the manifest's
``multi-vector`` section, applied by embedrank.model.kinds.multivector."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from embedrank.exporter import corpus, verify
from embedrank.exporter.deps import need
from embedrank.exporter.graphrun import GraphRunner
from embedrank.exporter.kinds.base import ExportKind, Loaded, Measured
from embedrank.exporter.options import ExportOptions
from embedrank.model.errors import ConfigError
from embedrank.model.jsonread import Reader
from embedrank.model.kinds import ModelKind
from embedrank.model.kinds.multivector import MULTI_VECTOR, MultiVectorSpec, Task, encode, kept
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
    worst, mismatched = 1.0, 0
    for r, g in zip(ref, got):
        if r.shape != g.shape:
            mismatched += 1
            continue
        if r.size:
            cos = (r * g).sum(1) / np.maximum(np.linalg.norm(r, axis=1) * np.linalg.norm(g, axis=1), 1e-12)
            worst = min(worst, float(cos.min()))
    return {"min_token_cosine": worst, "count_mismatch": mismatched}


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
        if opts.lossy:
            raise ConfigError("multi-vector models export exact graphs only for now: no --quantize, --optimize "
                              "O3/O4 or --precision bf16/int8 (their fidelity gate is not written yet)")
        floor = opts.min_cosine if opts.min_cosine is not None else 0.99999
        return {"min_token_cosine": floor, "max_count_mismatch": 0.0}

    def failures(self, report: dict[str, Any], limits: dict[str, float]) -> list[str]:
        bad = []
        for side in ("query", "document", "encode"):
            p = report["parity"][side]
            if p["count_mismatch"] > limits["max_count_mismatch"]:
                bad.append(f"parity ({side}): {p['count_mismatch']} texts with another vector count than the library's")
            if p["min_token_cosine"] < limits["min_token_cosine"]:
                bad.append(f"parity ({side}) min token cosine {p['min_token_cosine']:.6f} < {limits['min_token_cosine']}")
        return bad

    def measure(self, source: Any, runner: GraphRunner, texts: list[str], *, fidelity: bool) -> Measured:
        items = corpus.parity_texts()
        parity: dict[str, Any] = {"items": len(items)}
        for side, task in (("query", Task.QUERY), ("document", Task.DOCUMENT), ("encode", Task.NONE)):
            parity[side] = compare(reference_vectors(source, items, task), served_vectors(source.info, runner, items, task))
        return Measured({"parity": parity}, {**source.info, "ranges": calibrate_ranges(source.info, runner, texts)})

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
