"""Exporting cross-encoders (CrossEncoder): the sequence-classification head's ``logits`` per pair."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from embedrank.exporter import verify
from embedrank.exporter.deps import need
from embedrank.exporter.graphrun import GraphRunner
from embedrank.exporter.kinds import chain
from embedrank.exporter.kinds.base import ExportKind, Loaded, Measured
from embedrank.exporter.options import ExportOptions
from embedrank.model.errors import ConfigError
from embedrank.model.kinds import ModelKind
from embedrank.model.kinds.rerank import Activation
from embedrank.model.manifest import SelfCheck

_ACTIVATIONS = {"Sigmoid": Activation.SIGMOID, "Identity": Activation.IDENTITY, "Softmax": Activation.SOFTMAX, "Tanh": Activation.TANH}
# The CrossEncoder chain this module exports, by modules.json (a causal LM's: kinds/causal.py).
CHAINS = (("Transformer(sequence-classification)",),)


def activation_of(model: Any, where: str) -> Activation:
    """The CrossEncoder's saved activation, as one the server applies."""
    name = type(model.activation_fn).__name__
    if name not in _ACTIVATIONS:
        raise ConfigError(f"{where}: activation {name} is not supported ({', '.join(_ACTIVATIONS)} are)")
    return _ACTIVATIONS[name]


class RerankExport(ExportKind):
    kind = ModelKind.RERANK
    pairs = True

    def recognises(self, path: Path) -> bool:
        st_config = path / "config_sentence_transformers.json"
        if st_config.is_file() and json.loads(st_config.read_text()).get("model_type") == "CrossEncoder":
            return True
        modules = path / "modules.json"
        if modules.is_file():
            for entry in json.loads(modules.read_text()):
                cfg = path / entry.get("path", "") / "sentence_bert_config.json"
                if cfg.is_file() and json.loads(cfg.read_text()).get("transformer_task") == "sequence-classification":
                    return True
            return False
        config = path / "config.json"
        if config.is_file():
            archs = json.loads(config.read_text()).get("architectures") or []
            return any(a.endswith("ForSequenceClassification") for a in archs)
        return False

    def load(self, st: Any, path_or_id: str, *, model_kwargs: dict[str, Any], st_kwargs: dict[str, Any]) -> Loaded:
        chain.check(Path(path_or_id), CHAINS, what="CrossEncoder")
        model = st.CrossEncoder(path_or_id, device="cpu", model_kwargs=model_kwargs, **st_kwargs)
        reference = st.CrossEncoder(path_or_id, device="cpu", **st_kwargs)
        # A hub id's chain is known only now (a causal-LM reranker exports from a local folder: detect it there).
        chain.check_loaded(model, CHAINS, what="CrossEncoder", where=path_or_id)
        info = {"num_labels": int(model.num_labels), "activation": activation_of(model, path_or_id).value}
        return Loaded(model, reference, model[0].auto_model, model.tokenizer, int(model.max_seq_length), info)

    def wrapper(self, model: Any) -> tuple[Any, list[str]]:
        torch = need("torch")
        hf = model[0].auto_model

        class Scorer(torch.nn.Module):  # type: ignore[misc, name-defined]
            def __init__(self) -> None:
                super().__init__()
                self.model = hf

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
                kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
                if token_type_ids is not None:
                    kwargs["token_type_ids"] = token_type_ids
                return self.model(**kwargs).logits

        return Scorer().eval(), ["logits"]

    def thresholds(self, opts: ExportOptions) -> dict[str, float]:
        if opts.precision == "bf16":
            # Scores as callers get them (after the model's activation), as sentence-transformers' predict.
            return {"max_score_diff": 1e-2, "min_top1_agreement": 1.0}
        return {"max_abs_diff": 1e-4} if not opts.lossy else {"min_top1_agreement": opts.min_top1}

    def failures(self, report: dict[str, Any], limits: dict[str, float]) -> list[str]:
        parity, fidelity = report["parity"], report.get("fidelity") or {}
        bad: list[str] = []
        if "max_score_diff" in limits:
            worst = max(parity["max_score_diff"], fidelity.get("max_score_diff", 0.0))
            if worst > limits["max_score_diff"]:
                bad.append(f"max abs score diff {worst:.2e} > {limits['max_score_diff']}")
        if "max_abs_diff" in limits:
            if parity["max_abs_diff"] > limits["max_abs_diff"]:
                bad.append(f"parity max abs logit diff {parity['max_abs_diff']:.2e} > {limits['max_abs_diff']}")
            if not parity.get("same_ranking", True):  # rankings are a reranker's figure (not a classifier's)
                bad.append("parity ranking differs from CrossEncoder")
        if "min_top1_agreement" in limits:
            top1 = (fidelity or parity)["top1_agreement"]
            if top1 < limits["min_top1_agreement"]:
                bad.append(f"top-1 agreement {top1:.3f} < {limits['min_top1_agreement']}")
        return bad

    def measure(self, source: Any, runner: GraphRunner, texts: list[str], *, fidelity: bool) -> Measured:
        report: dict[str, Any] = {"parity": verify.rerank_parity(source, runner)}
        if fidelity:
            report["fidelity"] = verify.rerank_fidelity(source, runner, texts)
        return Measured(report, dict(source.info))

    def calibration_items(self, texts: list[str]) -> list[Any]:
        return list(verify.rerank_calibration_pairs(texts))

    def self_check(self, source: Any, gate: dict[str, float]) -> SelfCheck:
        pairs, queries = verify.self_check_pairs()
        ref = verify.reference_logits(source, pairs)
        return SelfCheck(tuple(pairs), tuple(tuple(map(float, row)) for row in ref), gate, queries=queries)


RERANK = RerankExport()
