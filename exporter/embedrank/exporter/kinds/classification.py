"""Exporting sequence classifiers: a CrossEncoder or ``*ForSequenceClassification`` checkpoint with
more than one label (sentiment, topics, NLI); ``--kind classification`` takes any of them.

The graph is the rerank graph (the head's ``logits``); what differs is the manifest section (label
names from ``id2label``, single- or multi-label, hence softmax or sigmoid) and the parity: every
label's logit, on single texts (against transformers, as the CrossEncoder's own model and tokenizer
run them) and on pairs (against ``CrossEncoder.predict``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from embedrank.exporter import corpus, verify
from embedrank.exporter.deps import need
from embedrank.exporter.graphrun import GraphRunner
from embedrank.exporter.kinds.base import Loaded, Measured
from embedrank.exporter.kinds import chain
from embedrank.exporter.kinds.rerank import CHAINS, RerankExport
from embedrank.model.errors import ConfigError
from embedrank.model.kinds import ModelKind
from embedrank.model.kinds.classification import ProblemType
from embedrank.model.kinds.rerank import Activation, activate
from embedrank.model.manifest import SelfCheck

_BY_PROBLEM = {ProblemType.SINGLE_LABEL: Activation.SOFTMAX, ProblemType.MULTI_LABEL: Activation.SIGMOID}


def _configs(path: Path) -> list[Path]:
    """config.json of the checkpoint: at its root, or in its transformer module's folder."""
    found = [path / "config.json"]
    modules = path / "modules.json"
    if modules.is_file():
        found += [path / entry.get("path", "") / "config.json" for entry in json.loads(modules.read_text())]
    return [p for p in found if p.is_file()]


def num_labels(path: Path) -> int:
    """Labels of a checkpoint's classification head, from its config.json (transformers' default: 2)."""
    for config_path in _configs(path):
        config = json.loads(config_path.read_text())
        if config.get("id2label"):
            return len(config["id2label"])
        if "num_labels" in config:
            return int(config["num_labels"])
        if "architectures" in config:
            return 2
    return 1


def problem_type(hf_config: Any, activation: str, labels: int, where: str) -> ProblemType:
    """Single- or multi-label: the CrossEncoder's saved activation first, then config.problem_type."""
    if labels == 1 or activation == "Sigmoid":
        return ProblemType.MULTI_LABEL
    if activation == "Softmax":
        return ProblemType.SINGLE_LABEL
    if activation != "Identity":
        raise ConfigError(f"{where}: activation {activation} is not one a classifier serves (Softmax, Sigmoid, Identity)")
    kind = getattr(hf_config, "problem_type", None)
    if kind == "regression":
        raise ConfigError(
            f"{where}: problem_type regression has scores, not classes; export it with --kind rerank for its label scores"
        )
    return ProblemType.MULTI_LABEL if kind == "multi_label_classification" else ProblemType.SINGLE_LABEL


def reference_text_logits(source: Any, texts: list[str]) -> np.ndarray:
    """Logits of single texts from the reference CrossEncoder's own transformers model and tokenizer."""
    torch = need("torch")
    ce = source.reference
    rows = []
    with torch.inference_mode():
        for start in range(0, len(texts), 32):
            batch = ce.tokenizer(texts[start : start + 32], padding=True, truncation=True,
                                 max_length=source.max_tokens, return_tensors="pt")
            rows.append(ce.model(**batch).logits.float().numpy())
    return np.concatenate(rows).astype(np.float32)


def reference_logits(source: Any, items: list[Any]) -> np.ndarray:
    """Texts through transformers, pairs through CrossEncoder.predict; rows in the items' order."""
    out = np.zeros((len(items), int(source.info["num_labels"])), dtype=np.float32)
    texts = [i for i, x in enumerate(items) if isinstance(x, str)]
    pairs = [i for i, x in enumerate(items) if not isinstance(x, str)]
    if texts:
        out[texts] = reference_text_logits(source, [items[i] for i in texts])
    if pairs:
        out[pairs] = verify.reference_logits(source, [tuple(items[i]) for i in pairs])
    return out


def _run(runner: GraphRunner, items: list[Any]) -> np.ndarray:
    texts = [i for i, x in enumerate(items) if isinstance(x, str)]
    pairs = [i for i, x in enumerate(items) if not isinstance(x, str)]
    parts: dict[str, np.ndarray] = {}
    if texts:
        parts["t"] = runner.run([items[i] for i in texts], "logits")
    if pairs:
        parts["p"] = runner.run([tuple(items[i]) for i in pairs], "logits")
    width = next(iter(parts.values())).shape[1]
    out = np.zeros((len(items), width), dtype=np.float32)
    if texts:
        out[texts] = parts["t"]
    if pairs:
        out[pairs] = parts["p"]
    return out


def _figures(source: Any, ref: np.ndarray, got: np.ndarray) -> dict[str, Any]:
    activation = Activation(source.info["activation"])
    return {
        "items": int(ref.shape[0]),
        "max_abs_diff": float(np.abs(ref - got).max()),
        "max_score_diff": float(np.abs(activate(ref, activation) - activate(got, activation)).max()),
        "top1_agreement": float(np.mean(np.argmax(ref, axis=1) == np.argmax(got, axis=1))),
    }


class ClassificationExport(RerankExport):
    kind = ModelKind.CLASSIFICATION
    pairs = True  # pair inputs mark their second text with token type 1

    def recognises(self, path: Path) -> bool:
        return super().recognises(path) and num_labels(path) > 1

    def load(self, st: Any, path_or_id: str, *, model_kwargs: dict[str, Any], st_kwargs: dict[str, Any]) -> Loaded:
        chain.check(Path(path_or_id), CHAINS, what="CrossEncoder")
        model = st.CrossEncoder(path_or_id, device="cpu", model_kwargs=model_kwargs, **st_kwargs)
        reference = st.CrossEncoder(path_or_id, device="cpu", **st_kwargs)
        hf = model[0].auto_model
        labels = int(model.num_labels)
        id2label = {int(k): str(v) for k, v in (getattr(hf.config, "id2label", None) or {}).items()}
        problem = problem_type(hf.config, type(model.activation_fn).__name__, labels, path_or_id)
        info = {
            "num_labels": labels,
            "labels": [id2label.get(i, f"LABEL_{i}") for i in range(labels)],
            "problem_type": problem.value,
            "activation": _BY_PROBLEM[problem].value,
        }
        return Loaded(model, reference, hf, model.tokenizer, int(model.max_seq_length), info)

    def measure(self, source: Any, runner: GraphRunner, texts: list[str], *, fidelity: bool) -> Measured:
        items: list[Any] = [*corpus.parity_texts(), *corpus.parity_pairs()]
        report: dict[str, Any] = {"parity": _figures(source, reference_logits(source, items), _run(runner, items))}
        if fidelity:
            report["fidelity"] = _figures(source, reference_logits(source, list(texts)), _run(runner, list(texts)))
        return Measured(report, dict(source.info))

    def calibration_items(self, texts: list[str]) -> list[Any]:
        return list(texts)

    def self_check(self, source: Any, gate: dict[str, float]) -> SelfCheck:
        pairs, _ = verify.self_check_pairs()
        items: list[Any] = [*verify.self_check_texts(), *pairs[:4]]
        ref = reference_logits(source, items)
        return SelfCheck(tuple(items), tuple(tuple(map(float, row)) for row in ref), gate)


CLASSIFICATION = ClassificationExport()
