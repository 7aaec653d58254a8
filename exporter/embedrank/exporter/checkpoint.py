"""A sentence-transformers checkpoint read without torch (`embedrank import`): its ONNX graph of the
transformer, its modules (Pooling, Dense, Normalize) from their config files and safetensors weights,
its tokenizer, prompts and, for a cross-encoder, the activation."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from embedrank.exporter.graphfile import check_data_present
from embedrank.exporter.kinds import chain, detect
from embedrank.model.errors import ConfigError
from embedrank.model.kinds import ModelKind

GRAPHS = ("onnx/model.onnx", "model.onnx")
# sentence-transformers' legacy boolean keys, in the order it concatenates the modes
LEGACY_POOLING = {"pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max",
                  "pooling_mode_mean_tokens": "mean", "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
                  "pooling_mode_weightedmean_tokens": "weightedmean", "pooling_mode_lasttoken": "lasttoken"}
POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "lasttoken")
DENSE_ACTIVATIONS = {"Tanh": "tanh", "Identity": "identity", "ReLU": "relu", "Sigmoid": "sigmoid"}
RERANK_ACTIVATIONS = {"Sigmoid": "sigmoid", "Identity": "identity", "Softmax": "softmax", "Tanh": "tanh"}


@dataclasses.dataclass(frozen=True)
class Dense:
    weight: np.ndarray  # [out, in], as torch.nn.Linear keeps it
    bias: np.ndarray | None
    activation: str  # a DENSE_ACTIVATIONS value


@dataclasses.dataclass
class Checkpoint:
    folder: Path
    graph: Path  # the transformer's ONNX graph served (a variant, or the plain one)
    reference_graph: Path  # the plain fp32 graph: the reference that the gate compares with
    kind: ModelKind
    model_type: str
    num_heads: int
    hidden_size: int
    max_tokens: int
    tokenizer_file: Path
    pad_token_id: int
    pooling: list[str] = dataclasses.field(default_factory=list)
    dense: list[Dense] = dataclasses.field(default_factory=list)
    normalize: bool = False
    info: dict[str, Any] = dataclasses.field(default_factory=dict)  # the kind's manifest section


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return data


def _optional(path: Path) -> dict[str, Any]:
    return _json(path) if path.is_file() else {}


def _graph(folder: Path, variant: str | None) -> tuple[Path, Path]:
    plain = next((folder / g for g in GRAPHS if (folder / g).is_file()), None)
    if plain is None:
        raise ConfigError(f"{folder}: no ONNX graph of the transformer ({' or '.join(GRAPHS)}); export it with torch "
                          "instead: pip install '.[export]', then embedrank export")
    check_data_present(plain)  # a graph past 2 GiB: onnx/model.onnx_data beside it (the Hub's layout)
    if variant is None:
        return plain, plain
    chosen = plain.parent / f"model_{variant}.onnx"
    if not chosen.is_file():
        have = sorted(p.stem.removeprefix("model_") for p in plain.parent.glob("model_*.onnx"))
        raise ConfigError(f"--variant {variant}: no {chosen.name} in {plain.parent} (variants there: {', '.join(have) or 'none'})")
    check_data_present(chosen)
    return chosen, plain


def _pooling(folder: Path, path: str) -> list[str]:
    cfg = _json(folder / path / "config.json")
    if cfg.get("include_prompt") is False:
        raise ConfigError(f"{folder}: Pooling with include_prompt=False is not supported yet")
    mode = cfg.get("pooling_mode")
    modes = [mode] if isinstance(mode, str) else list(mode or [])
    if not modes:
        modes = [m for key, m in LEGACY_POOLING.items() if cfg.get(key)] or ["mean"]
    for m in modes:
        if m not in POOLING_MODES:
            raise ConfigError(f"{folder}/{path}: pooling mode {m!r} is not supported by import ({', '.join(POOLING_MODES)} are)")
    return modes


def _dense(folder: Path, path: str) -> Dense:
    cfg = _json(folder / path / "config.json")
    act = str(cfg.get("activation_function") or "torch.nn.modules.activation.Tanh").rsplit(".", 1)[-1]
    if act not in DENSE_ACTIVATIONS:
        raise ConfigError(f"{folder}/{path}: Dense activation {act} is not supported by import ({', '.join(DENSE_ACTIVATIONS)} are)")
    weights = folder / path / "model.safetensors"
    if not weights.is_file():
        raise ConfigError(f"{folder}/{path}: no model.safetensors (pytorch_model.bin needs torch: pip install '.[export]', "
                          "then embedrank export)")
    from safetensors.numpy import load_file

    tensors = load_file(str(weights))
    if "linear.weight" not in tensors:
        raise ConfigError(f"{weights}: no linear.weight tensor")
    bias = tensors.get("linear.bias")
    return Dense(tensors["linear.weight"].astype(np.float32), None if bias is None else bias.astype(np.float32),
                 DENSE_ACTIVATIONS[act])


def _pad_id(folder: Path, tokenizer: dict[str, Any]) -> int:
    pad = _optional(folder / "tokenizer_config.json").get("pad_token")
    pad = pad.get("content") if isinstance(pad, dict) else pad
    for token in tokenizer.get("added_tokens") or []:
        if pad is not None and token.get("content") == pad:
            return int(token["id"])
    vocab = (tokenizer.get("model") or {}).get("vocab")
    if isinstance(vocab, dict) and pad in vocab:
        return int(vocab[pad])
    return 0


def read(folder: Path, *, kind: ModelKind | None, variant: str | None) -> Checkpoint:
    """The checkpoint at ``folder`` as far as import needs it; ConfigError naming what is missing."""
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such folder (import takes a local checkpoint; serve --model fetches hub ids)")
    if chain.first_task(folder) == "text-generation":  # a shipped graph of it returns every position's vocabulary
        raise ConfigError(f"{folder}: a CrossEncoder on a causal LM; import takes its graph as shipped, which returns "
                          "logits over the whole vocabulary: export it instead (embedrank export), which builds the "
                          "graph of the two LM-head rows its score reads")
    graph, reference = _graph(folder, variant)
    kind = kind or detect(folder)
    if kind not in (ModelKind.EMBEDDING, ModelKind.RERANK):
        raise ConfigError(f"{folder}: a {kind.value} model; import takes embedding and rerank models (export the others)")
    config = _json(folder / "config.json")
    if not (folder / "tokenizer.json").is_file():
        raise ConfigError(f"{folder}: needs a fast tokenizer (tokenizer.json)")
    st_config = _optional(folder / "sentence_bert_config.json")
    max_tokens = int(st_config.get("max_seq_length") or _optional(folder / "tokenizer_config.json").get("model_max_length") or 512)
    max_positions = int(config.get("max_position_embeddings") or 0)
    if max_positions and config.get("model_type") in ("roberta", "xlm-roberta", "camembert"):
        max_positions -= 2
    if max_positions:
        max_tokens = min(max_tokens, max_positions)
    ckpt = Checkpoint(
        folder=folder, graph=graph, reference_graph=reference, kind=kind, model_type=str(config.get("model_type", "")),
        num_heads=int(config.get("num_attention_heads") or 0), hidden_size=int(config.get("hidden_size") or 0),
        max_tokens=max_tokens, tokenizer_file=folder / "tokenizer.json",
        pad_token_id=_pad_id(folder, _json(folder / "tokenizer.json")),
    )
    st = _optional(folder / "config_sentence_transformers.json")
    if kind is ModelKind.RERANK:
        act = st.get("activation_fn") or (config.get("sentence_transformers") or {}).get("activation_fn")
        num_labels = len(config.get("id2label") or {}) or int(config.get("num_labels") or 1)
        name = str(act).rsplit(".", 1)[-1] if act else ("Sigmoid" if num_labels == 1 else "Identity")
        if name not in RERANK_ACTIVATIONS:
            raise ConfigError(f"{folder}: activation {name} is not supported ({', '.join(RERANK_ACTIVATIONS)} are)")
        ckpt.info = {"num_labels": num_labels, "activation": RERANK_ACTIVATIONS[name]}
        return ckpt
    modules = json.loads((folder / "modules.json").read_text()) if (folder / "modules.json").is_file() else []
    for entry in modules:
        name = str(entry.get("type", "")).rsplit(".", 1)[-1]
        if name == "Transformer":
            continue
        if name == "Pooling":
            ckpt.pooling = _pooling(folder, entry.get("path", ""))
        elif name == "Dense":
            ckpt.dense.append(_dense(folder, entry.get("path", "")))
        elif name == "Normalize":
            ckpt.normalize = True
        else:
            raise ConfigError(f"{folder}: module {name} is not supported (Transformer, Pooling, Dense, Normalize are)")
    if not ckpt.pooling:
        ckpt.pooling = ["mean"]  # sentence-transformers' default for a bare transformer
    dims = ckpt.hidden_size * len(ckpt.pooling)
    if ckpt.dense:
        dims = int(ckpt.dense[-1].weight.shape[0])
    ckpt.info = {
        "dimensions": dims, "pooling": ckpt.pooling, "normalize": ckpt.normalize, "dense_layers": len(ckpt.dense),
        "prompts": dict(st.get("prompts") or {}), "default_prompt_name": st.get("default_prompt_name"),
        "similarity_fn": str(st.get("similarity_fn_name") or "cosine"),
    }
    return ckpt
