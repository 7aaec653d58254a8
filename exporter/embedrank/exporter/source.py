"""Step 1: read the checkpoint: what kind of model it is and everything the manifest records."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from embedrank.exporter.deps import need
from embedrank.model.errors import ConfigError
from embedrank.exporter.kinds import detect, export_kind
from embedrank.model.kinds import ModelKind

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


def load(path_or_id: str, kind: ModelKind | None, *, trust_remote_code: bool = False) -> Source:
    st = need("sentence_transformers")
    # transformers' per-load "Loading weights" bars would interleave with our step progress; its log
    # records go to the root logger like everyone's (the command shows them with --log-level DEBUG).
    hf_logging = need("transformers").utils.logging
    hf_logging.disable_progress_bar()
    hf_logging.disable_default_handler()
    hf_logging.enable_propagation()
    path = Path(path_or_id)
    local = path.is_dir()
    if not local and ("/" not in path_or_id or path_or_id.startswith((".", "/"))):
        raise ConfigError(f"{path_or_id}: no such folder (a Hugging Face hub id looks like org/name)")
    kind = kind or (detect(path) if local else ModelKind.EMBEDDING)
    eager = {"attn_implementation": "eager"}  # fusable attention (the optimizer knows its pattern)
    remote = {"trust_remote_code": trust_remote_code}  # the checkpoint's own modeling code (auto_map)
    exporter = export_kind(kind, path)
    loaded = exporter.load(st, path_or_id, model_kwargs=eager, st_kwargs=remote)
    model, reference, hf, tokenizer = loaded.model, loaded.reference, loaded.hf, loaded.tokenizer
    max_tokens, info = loaded.max_tokens, loaded.info
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(f"{path_or_id}: needs a fast tokenizer (tokenizer.json); this one is slow")
    config = hf.config
    max_positions = getattr(config, "max_position_embeddings", None)
    if max_positions and config.model_type in ("roberta", "xlm-roberta", "camembert"):
        max_positions -= 2  # positions start after the padding index
    if max_positions:
        max_tokens = min(max_tokens, int(max_positions))
    input_names = [n for n in tokenizer.model_input_names if n in ("input_ids", "attention_mask", "token_type_ids")]
    if not exporter.pairs and "token_type_ids" in input_names and getattr(config, "type_vocab_size", 1) <= 1:
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
