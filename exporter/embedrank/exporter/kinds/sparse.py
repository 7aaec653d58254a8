"""Exporting sparse (SPLADE) models: a SparseEncoder (MLMTransformer + SpladePooling) or, with
``--kind sparse``, a plain ``*ForMaskedLM`` checkpoint (sentence-transformers then adds the pooling:
max, relu). The graph ends in the pooled vocabulary-sized activations, ``sparse_embedding``."""

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
from embedrank.model.kinds import ModelKind
from embedrank.model.kinds.sparse import compare, flat_pairs
from embedrank.model.manifest import SelfCheck

def _st_model_type(path: Path) -> str | None:
    cfg = path / "config_sentence_transformers.json"
    return json.loads(cfg.read_text()).get("model_type") if cfg.is_file() else None


def _module_types(path: Path) -> list[str]:
    modules = path / "modules.json"
    return [str(m.get("type", "")) for m in json.loads(modules.read_text())] if modules.is_file() else []


def reference_rows(source: Any, texts: list[str]) -> np.ndarray:
    """SparseEncoder.encode, dense: one vocabulary-sized row per text (the model's max_active_dims applied)."""
    emb = source.reference.encode(texts, batch_size=32, convert_to_tensor=True, convert_to_sparse_tensor=False,
                                  show_progress_bar=False)
    return np.asarray(emb.cpu().numpy(), dtype=np.float32)


class SparseExport(ExportKind):
    kind = ModelKind.SPARSE
    pairs = False

    def recognises(self, path: Path) -> bool:
        return _st_model_type(path) == "SparseEncoder" or any("SpladePooling" in t for t in _module_types(path))

    def load(self, st: Any, path_or_id: str, *, model_kwargs: dict[str, Any], st_kwargs: dict[str, Any]) -> Loaded:
        model = st.SparseEncoder(path_or_id, device="cpu", model_kwargs=model_kwargs, **st_kwargs)
        reference = st.SparseEncoder(path_or_id, device="cpu", **st_kwargs)
        names = [type(m).__name__ for m in model]
        if "Router" in names:
            raise ConfigError(
                f"{path_or_id}: an asymmetric SparseEncoder (a Router with an inference-free query side) is not "
                "served yet; only single-path SPLADE models (MLMTransformer + SpladePooling) export"
            )
        if len(names) != 2 or names[1] != "SpladePooling" or names[0] not in ("Transformer", "MLMTransformer"):
            raise ConfigError(f"{path_or_id}: modules {names} are not supported (Transformer + SpladePooling are)")
        pooling = model[1]
        if getattr(model[0], "transformer_task", "fill-mask") != "fill-mask":
            raise ConfigError(f"{path_or_id}: the Transformer must be a fill-mask (masked LM) model for SPLADE")
        hf = model[0].auto_model
        info = {
            "dimensions": int(hf.config.vocab_size),
            "pooling": str(pooling.pooling_strategy),
            "activation": str(pooling.activation_function),
            "max_active_dims": model.max_active_dims,
            "prompts": {k: v for k, v in (model.prompts or {}).items() if v},
            "default_prompt_name": model.default_prompt_name,
            "similarity_fn": str(model.similarity_fn_name or "dot"),
        }
        return Loaded(model, reference, hf, model.tokenizer, int(model.max_seq_length or model.tokenizer.model_max_length), info)

    def wrapper(self, model: Any) -> tuple[Any, list[str]]:
        torch = need("torch")
        hf = model[0].auto_model
        pooling = model[1]
        use_max = pooling.pooling_strategy == "max"
        twice = pooling.activation_function == "log1p_relu"

        class Splade(torch.nn.Module):  # type: ignore[misc, name-defined]
            """SpladePooling.forward without its chunk loop (one pass; the same arithmetic)."""

            def __init__(self) -> None:
                super().__init__()
                self.model = hf

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
                kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
                if token_type_ids is not None:
                    kwargs["token_type_ids"] = token_type_ids
                logits = self.model(**kwargs).logits
                x = torch.log1p(torch.relu(logits * attention_mask.unsqueeze(-1).to(logits.dtype)))
                if twice:
                    x = torch.log1p(x)
                return x.amax(dim=1) if use_max else x.sum(dim=1)

        return Splade().eval(), ["sparse_embedding"]

    def thresholds(self, opts: ExportOptions) -> dict[str, float]:
        if opts.lossy:
            raise ConfigError("sparse models export exact graphs only for now: no --quantize, --optimize O3/O4 "
                              "or --precision bf16/int8 (their fidelity gate is not written yet)")
        return {"min_index_agreement": 1.0, "max_rel_diff": 1e-4}

    def failures(self, report: dict[str, Any], limits: dict[str, float]) -> list[str]:
        parity = report["parity"]
        bad = []
        if parity["index_agreement"] < limits["min_index_agreement"]:
            bad.append(f"parity: same non-zero indices in {parity['index_agreement']:.3f} of the texts "
                       f"< {limits['min_index_agreement']}")
        if parity["max_rel_diff"] > limits["max_rel_diff"]:
            bad.append(f"parity max relative value diff {parity['max_rel_diff']:.2e} > {limits['max_rel_diff']}")
        return bad

    def _rows(self, source: Any, dense: np.ndarray) -> list[np.ndarray]:
        return [flat_pairs(row, source.info["max_active_dims"]) for row in dense]

    def measure(self, source: Any, runner: GraphRunner, texts: list[str], *, fidelity: bool) -> Measured:
        items = corpus.parity_texts()
        ref = self._rows(source, reference_rows(source, items))
        got = self._rows(source, runner.run(items, "sparse_embedding"))
        parity: dict[str, Any] = {"items": len(items), **compare(ref, got),
                                  "mean_non_zero": float(np.mean([r[0] for r in ref]))}
        return Measured({"parity": parity}, dict(source.info))

    def calibration_items(self, texts: list[str]) -> list[Any]:
        return list(texts)

    def self_check(self, source: Any, gate: dict[str, float]) -> SelfCheck:
        texts = verify.self_check_texts()
        rows = self._rows(source, reference_rows(source, texts))
        return SelfCheck(tuple(texts), tuple(tuple(float(v) for v in r) for r in rows), gate)


SPARSE = SparseExport()
