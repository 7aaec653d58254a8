"""Step 1: read the checkpoint: what kind of model it is and everything the manifest records."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from embedrank.exporter.deps import need
from embedrank.server.errors import ConfigError
from embedrank.server.manifest import Activation, ModelKind

_ACTIVATIONS = {"Sigmoid": Activation.SIGMOID, "Identity": Activation.IDENTITY, "Softmax": Activation.SOFTMAX, "Tanh": Activation.TANH}

# onnxruntime.transformers model types with attention fusions, by HF config model_type.
FUSION_MODEL_TYPES = {
    "bert": "bert", "roberta": "bert", "xlm-roberta": "bert", "camembert": "bert", "distilbert": "bert",
    "electra": "bert", "mpnet": "bert", "deberta-v2": "bert",
}


@dataclasses.dataclass
class Source:
    path: str
    kind: ModelKind
    model: Any  # SentenceTransformer or CrossEncoder, loaded with eager attention for export
    reference: Any  # the same checkpoint loaded as users load it (the parity reference)
    tokenizer: Any  # the HF fast tokenizer
    model_type: str
    num_heads: int
    hidden_size: int
    max_tokens: int
    input_names: list[str]
    info: dict[str, Any]  # kind-specific manifest fields


def detect_kind(path: Path) -> ModelKind:
    st_config = path / "config_sentence_transformers.json"
    if st_config.is_file() and json.loads(st_config.read_text()).get("model_type") == "CrossEncoder":
        return ModelKind.RERANK
    modules = path / "modules.json"
    if modules.is_file():
        for entry in json.loads(modules.read_text()):
            cfg = path / entry.get("path", "") / "sentence_bert_config.json"
            if cfg.is_file() and json.loads(cfg.read_text()).get("transformer_task") == "sequence-classification":
                return ModelKind.RERANK
        return ModelKind.EMBEDDING
    config = path / "config.json"
    if config.is_file():
        archs = json.loads(config.read_text()).get("architectures") or []
        if any(a.endswith("ForSequenceClassification") for a in archs):
            return ModelKind.RERANK
    return ModelKind.EMBEDDING


def _module_config(module: Any) -> dict[str, Any]:
    get = getattr(module, "get_config_dict", None)
    return dict(get()) if get else {}


def load(path_or_id: str, kind: ModelKind | None, *, trust_remote_code: bool = False) -> Source:
    st = need("sentence_transformers")
    # transformers' per-load "Loading weights" bars would interleave with our step progress;
    # its warnings (e.g. newly initialised weights) stay on.
    need("transformers").utils.logging.disable_progress_bar()
    path = Path(path_or_id)
    local = path.is_dir()
    if not local and ("/" not in path_or_id or path_or_id.startswith((".", "/"))):
        raise ConfigError(f"{path_or_id}: no such folder (a Hugging Face hub id looks like org/name)")
    kind = kind or (detect_kind(path) if local else ModelKind.EMBEDDING)
    eager = {"attn_implementation": "eager"}  # fusable attention (the optimizer knows its pattern)
    remote = {"trust_remote_code": trust_remote_code}  # the checkpoint's own modeling code (auto_map)
    if kind is ModelKind.EMBEDDING:
        model = st.SentenceTransformer(path_or_id, device="cpu", model_kwargs=eager, **remote)
        reference = st.SentenceTransformer(path_or_id, device="cpu", **remote)
        hf = model[0].auto_model
        tokenizer = model.tokenizer
        max_tokens = int(model.max_seq_length or tokenizer.model_max_length)
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
        dim = get_dimension()
        info = {
            "dimensions": int(dim),
            "pooling": pooling,
            "normalize": normalize,
            "dense_layers": dense,
            "prompts": dict(model.prompts or {}),
            "default_prompt_name": model.default_prompt_name,
            "similarity_fn": str(model.similarity_fn_name or "cosine"),
        }
    else:
        model = st.CrossEncoder(path_or_id, device="cpu", model_kwargs=eager, **remote)
        reference = st.CrossEncoder(path_or_id, device="cpu", **remote)
        hf = model[0].auto_model
        tokenizer = model.tokenizer
        max_tokens = int(model.max_seq_length)
        act_name = type(model.activation_fn).__name__
        if act_name not in _ACTIVATIONS:
            raise ConfigError(f"{path_or_id}: activation {act_name} is not supported ({', '.join(_ACTIVATIONS)} are)")
        info = {"num_labels": int(model.num_labels), "activation": _ACTIVATIONS[act_name].value}
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(f"{path_or_id}: needs a fast tokenizer (tokenizer.json); this one is slow")
    config = hf.config
    max_positions = getattr(config, "max_position_embeddings", None)
    if max_positions and config.model_type in ("roberta", "xlm-roberta", "camembert"):
        max_positions -= 2  # positions start after the padding index
    if max_positions:
        max_tokens = min(max_tokens, int(max_positions))
    input_names = [n for n in tokenizer.model_input_names if n in ("input_ids", "attention_mask", "token_type_ids")]
    if kind is ModelKind.EMBEDDING and "token_type_ids" in input_names and getattr(config, "type_vocab_size", 1) <= 1:
        input_names.remove("token_type_ids")
    return Source(
        path=path_or_id,
        kind=kind,
        model=model.eval(),
        reference=reference.eval(),
        tokenizer=tokenizer,
        model_type=str(config.model_type),
        num_heads=int(getattr(config, "num_attention_heads", 0) or 0),
        hidden_size=int(getattr(config, "hidden_size", 0) or 0),
        max_tokens=max_tokens,
        input_names=input_names,
        info=info,
    )
