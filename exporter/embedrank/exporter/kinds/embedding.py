"""Exporting dense embedding models (SentenceTransformer): Transformer -> Pooling -> Dense -> Normalize,
all in one graph that outputs ``sentence_embedding`` (and ``pooled_embedding`` before Normalize)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from embedrank.exporter import verify
from embedrank.exporter.deps import need
from embedrank.exporter.graphrun import GraphRunner
from embedrank.exporter.kinds.base import ExportKind, Loaded, Measured, failed_min
from embedrank.exporter.optimize import OptimizeLevel
from embedrank.exporter.options import ExportOptions
from embedrank.exporter.quantize import QuantizePreset
from embedrank.model.errors import ConfigError
from embedrank.model.kinds import ModelKind
from embedrank.model.manifest import SelfCheck


def _module_config(module: Any) -> dict[str, Any]:
    get = getattr(module, "get_config_dict", None)
    return dict(get()) if get else {}


class EmbeddingExport(ExportKind):
    kind = ModelKind.EMBEDDING
    pairs = False

    def recognises(self, path: Path) -> bool:
        return True  # the fallback: checked after every other kind

    def load(self, st: Any, path_or_id: str, *, model_kwargs: dict[str, Any], st_kwargs: dict[str, Any]) -> Loaded:
        model = st.SentenceTransformer(path_or_id, device="cpu", model_kwargs=model_kwargs, **st_kwargs)
        reference = st.SentenceTransformer(path_or_id, device="cpu", **st_kwargs)
        tokenizer = model.tokenizer
        pooling: list[str] = []
        dense = 0
        normalize = False
        for module in model:
            name, cfg = type(module).__name__, _module_config(module)
            if name == "Pooling":
                if cfg.get("include_prompt") is False:
                    raise ConfigError(f"{path_or_id}: Pooling with include_prompt=False is not supported yet")
                mode = cfg.get("pooling_mode")
                pooling = [mode] if isinstance(mode, str) else list(mode or [])
            elif name == "Dense":
                dense += 1
            elif name == "Normalize":
                normalize = True
            elif name != "Transformer":
                raise ConfigError(f"{path_or_id}: module {name} is not supported (Transformer, Pooling, Dense, Normalize are)")
        # Newer sentence-transformers renamed it get_embedding_dimension (the old name warns).
        get_dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        info = {
            "dimensions": int(get_dimension()),
            "pooling": pooling,
            "normalize": normalize,
            "dense_layers": dense,
            "prompts": dict(model.prompts or {}),
            "default_prompt_name": model.default_prompt_name,
            "similarity_fn": str(model.similarity_fn_name or "cosine"),
        }
        return Loaded(model, reference, model[0].auto_model, tokenizer,
                      int(model.max_seq_length or tokenizer.model_max_length), info)

    def wrapper(self, model: Any) -> tuple[Any, list[str]]:
        torch = need("torch")
        modules = list(model)
        normalizes = type(modules[-1]).__name__ == "Normalize"

        class Embedder(torch.nn.Module):  # type: ignore[misc, name-defined]
            def __init__(self) -> None:
                super().__init__()
                self.stages = torch.nn.ModuleList(modules)

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
                features = {"input_ids": input_ids, "attention_mask": attention_mask}
                if token_type_ids is not None:
                    features["token_type_ids"] = token_type_ids
                pooled = None
                for stage in self.stages:
                    if type(stage).__name__ == "Normalize":
                        pooled = features["sentence_embedding"]
                    features = stage(features)
                if pooled is None:
                    return features["sentence_embedding"]
                return features["sentence_embedding"], pooled

        outputs = ["sentence_embedding", "pooled_embedding"] if normalizes else ["sentence_embedding"]
        return Embedder().eval(), outputs

    def thresholds(self, opts: ExportOptions) -> dict[str, float]:
        def floor(default: float) -> float:
            return opts.min_cosine if opts.min_cosine is not None else default

        if opts.precision == "bf16":  # gated on the fidelity corpus too, not only on the parity texts
            return {"min_cosine": floor(0.9999), "min_fidelity_cosine": floor(0.9999)}
        if opts.quantize is not QuantizePreset.NONE or opts.precision == "int8":
            return {"min_mean_cosine": floor(0.99)}
        if opts.optimize is OptimizeLevel.O4:
            return {"min_cosine": floor(0.999)}
        if opts.optimize is OptimizeLevel.O3:
            return {"min_cosine": floor(0.9999)}
        return {"min_cosine": floor(0.99999)}

    def failures(self, report: dict[str, Any], limits: dict[str, float]) -> list[str]:
        parity, fidelity = report["parity"], report.get("fidelity") or {}
        bad: list[str] = []
        if "min_cosine" in limits:
            bad += failed_min(parity, "min_cosine", limits["min_cosine"], "parity min cosine")
        if "min_fidelity_cosine" in limits and fidelity:
            bad += failed_min(fidelity, "min_cosine", limits["min_fidelity_cosine"], "fidelity min cosine")
        if "min_mean_cosine" in limits:
            bad += failed_min(fidelity or parity, "mean_cosine", limits["min_mean_cosine"], "mean cosine")
        return bad

    def measure(self, source: Any, runner: GraphRunner, texts: list[str], *, fidelity: bool) -> Measured:
        report: dict[str, Any] = {"parity": verify.embedding_parity(source, runner)}
        if fidelity:
            report["fidelity"] = verify.embedding_fidelity(source, runner, texts)
        return Measured(report, {**source.info, "ranges": verify.calibrate_ranges(runner, texts)})

    def calibration_items(self, texts: list[str]) -> list[Any]:
        return list(texts)

    def self_check(self, source: Any, gate: dict[str, float]) -> SelfCheck:
        texts = verify.self_check_texts()
        ref = verify.reference_embeddings(source, texts)
        return SelfCheck(tuple(texts), tuple(tuple(map(float, row)) for row in ref), gate)


EMBEDDING = EmbeddingExport()
