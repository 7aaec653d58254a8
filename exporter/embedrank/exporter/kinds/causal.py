"""Exporting rerankers built on a causal LM (Qwen3-Reranker's layout): a variant of the rerank kind.

sentence-transformers 6 loads them as a CrossEncoder whose chain is ``Transformer(text-generation)``
followed by ``LogitScore(true_token_id, false_token_id)``. The traced graph is not the LM: it runs the
decoder, takes each row's last real token's hidden state and multiplies it by the two LM-head rows the
score needs (``logits`` = logit[yes] - logit[no], one column), so a batch's output is a few bytes
instead of batch x sequence x vocabulary floats. The manifest's ``rerank.causal`` says how a pair
becomes tokens (embedrank.model.kinds.causal): the library's text-pair encoding with the default
prompt, or the chat template rendered around the query and the document.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from embedrank.exporter import corpus
from embedrank.exporter.deps import need
from embedrank.exporter.graphrun import GraphRunner
from embedrank.exporter.kinds import chain
from embedrank.exporter.kinds.base import Loaded, Measured
from embedrank.exporter.kinds.rerank import RerankExport, activation_of
from embedrank.model.errors import ConfigError
from embedrank.model.kinds.causal import DOCUMENT, QUERY, CausalSpec, PairFormat
from embedrank.model.kinds.causal import parse as parse_causal
from embedrank.model.jsonread import Reader
from embedrank.model.tokenize import TextTokenizer, Truncate

CHAINS = (("Transformer(text-generation)", "LogitScore"),)
# Stand-ins for the query and the document while the chat template renders (private-use characters).
_Q, _D = "\ue000query\ue001", "\ue002document\ue003"
# Texts the rendered segments must reproduce: a plain substitution of whatever the caller sends.
_PROBES = (("What is a tuple?", "A tuple is  {{ an }} immutable\nsequence. "), ("x", "<p>y</p>"))
_SIZE_KWARGS = {"padding", "truncation", "max_length", "return_tensors", "pad_to_multiple_of"}


def _chat_kwargs(transformer: Any) -> dict[str, Any]:
    """The module's apply_chat_template kwargs, as its preprocess forwards them to the render."""
    kwargs = dict(transformer._merge_processing_kwargs(None).get("chat_template", {}))
    return {k: v for k, v in kwargs.items() if k not in _SIZE_KWARGS and k != "restore_suffix"}


def _messages(transformer: Any, prompt: str, query: str, document: str) -> list[dict[str, Any]]:
    """The conversation sentence-transformers builds for one pair (and its prompt, a system message)."""
    formatter = transformer.input_formatter
    batch = formatter.batch_to_message("text", {"text": [(query, document)]})[1]["message"]
    if prompt:
        batch = formatter.prepend_prompt_to_messages(batch, prompt)
    return list(batch[0])


def pair_format(ce: Any, *, true_id: int, false_id: int | None, prompt: str, where: str) -> CausalSpec:
    """How ``ce`` turns a pair into tokens: its text-pair encoding, or its chat template as fixed text around
    the query and the document (checked to be a plain substitution)."""
    transformer = ce[0]
    base = CausalSpec(true_token_id=true_id, false_token_id=false_id, format=PairFormat.PAIR, prompt=prompt)
    if ce.preprocess([_PROBES[0]], prompt=prompt or None).get("modality") != "message":
        return base
    kwargs = _chat_kwargs(transformer)

    def render(query: str, document: str) -> str:
        out = transformer.tokenizer.apply_chat_template(_messages(transformer, prompt, query, document),
                                                        tokenize=False, **kwargs)
        return str(out)

    text = render(_Q, _D)
    if text.count(_Q) != 1 or text.count(_D) != 1:
        raise ConfigError(f"{where}: the chat template does not put the query and the document into the text once "
                          "each, unchanged (a filter, a repeat or a branch on their content); the server renders it "
                          "as fixed text around them, which would not match")
    first, second = (_Q, _D) if text.index(_Q) < text.index(_D) else (_D, _Q)
    head, rest = text.split(first)
    middle, tail = rest.split(second)
    slot = {_Q: QUERY, _D: DOCUMENT}
    suffix = transformer._chat_template_suffix_ids(_messages(transformer, prompt, "a", "b"), kwargs, {}, {})
    spec = parse_causal(Reader({"true_token_id": true_id, "false_token_id": false_id, "format": "chat",
                                "prompt": prompt, "suffix_ids": [int(i) for i in suffix],
                                "segments": [head, {"slot": slot[first]}, middle, {"slot": slot[second]}, tail]},
                               where), where=where)
    for query, document in _PROBES:
        if spec.render(query, document) != render(query, document):
            raise ConfigError(f"{where}: the chat template changes the query or document text as it renders it "
                              "(a filter or a branch on their content); the server renders it as fixed text around "
                              "them, which would not match")
    return spec


class CausalRerankExport(RerankExport):
    pairs = False  # a decoder: no token types

    def recognises(self, path: Path) -> bool:
        return chain.first_task(path) == "text-generation"

    def load(self, st: Any, path_or_id: str, *, model_kwargs: dict[str, Any], st_kwargs: dict[str, Any]) -> Loaded:
        chain.check(Path(path_or_id), CHAINS, what="causal-LM CrossEncoder")
        model = st.CrossEncoder(path_or_id, device="cpu", model_kwargs=model_kwargs, **st_kwargs)
        reference = st.CrossEncoder(path_or_id, device="cpu", **st_kwargs)
        head = model[-1]
        if head.module_input_name != "causal_logits":
            raise ConfigError(f"{path_or_id}: LogitScore reads {head.module_input_name!r}, not the LM's causal_logits")
        prompt = reference._resolve_prompt(None, None) or ""  # what predict() applies when not told otherwise
        spec = pair_format(reference, true_id=int(head.true_token_id), prompt=prompt, where=path_or_id,
                           false_id=None if head.false_token_id is None else int(head.false_token_id))
        info = {"num_labels": 1, "activation": activation_of(model, path_or_id).value, "causal": spec.to_json()}
        return Loaded(model, reference, model[0].auto_model, model.tokenizer, int(model.max_seq_length), info)

    def wrapper(self, model: Any) -> tuple[Any, list[str]]:
        torch = need("torch")
        hf, head = model[0].auto_model, model[-1]
        rows = [head.true_token_id] + ([] if head.false_token_id is None else [head.false_token_id])
        lm_head = hf.get_output_embeddings()
        weight = lm_head.weight.detach()[rows].clone()
        bias = None if getattr(lm_head, "bias", None) is None else lm_head.bias.detach()[rows].clone()
        softcap = getattr(hf.config, "final_logit_softcapping", None)

        class CausalScorer(torch.nn.Module):  # type: ignore[misc, name-defined]
            """(input_ids, attention_mask) -> logit[true] - logit[false] at each row's last real token."""

            def __init__(self) -> None:
                super().__init__()
                self.decoder = hf.base_model
                self.register_buffer("rows", weight)
                self.register_buffer("bias", bias)

            def forward(self, input_ids: Any, attention_mask: Any) -> Any:
                # Positions from each row's first real token: a row scores as it would alone, either padding side.
                positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
                hidden = self.decoder(input_ids=input_ids, attention_mask=attention_mask,
                                      position_ids=positions).last_hidden_state
                steps = torch.arange(attention_mask.shape[1], device=attention_mask.device)
                last = (attention_mask * steps).argmax(dim=1)  # the last real token of each row
                picked = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
                logits = picked @ self.rows.T
                if self.bias is not None:
                    logits = logits + self.bias
                if softcap:
                    logits = torch.tanh(logits / softcap) * softcap
                return logits[:, :1] - logits[:, 1:] if logits.shape[1] == 2 else logits

        scorer = CausalScorer().eval()
        _check_head(torch, hf, scorer, rows)
        return scorer, ["logits"]

    def measure(self, source: Any, runner: GraphRunner, texts: list[str], *, fidelity: bool) -> Measured:
        measured = super().measure(source, runner, texts, fidelity=fidelity)
        pairs = [*corpus.parity_pairs(), (corpus.parity_texts()[-1], " ".join(corpus.paragraphs(4)))]
        measured.report["parity"]["same_tokens"] = _same_tokens(source, runner.tokenizer, pairs)
        return measured

    def failures(self, report: dict[str, Any], limits: dict[str, float]) -> list[str]:
        bad = super().failures(report, limits)
        same = report["parity"].get("same_tokens", 1.0)
        if same < 1.0:
            bad.insert(0, f"the server's tokens for the pairs differ from sentence-transformers' in {1 - same:.0%} "
                          "of them (prompt or chat template)")
        return bad

    def wrap_tokenizer(self, source: Any, base: TextTokenizer) -> TextTokenizer:
        from embedrank.model.kinds.causal import CausalPairs

        return CausalPairs(base, parse_causal(Reader(source.info["causal"], "export"), where="export"))


def _check_head(torch: Any, hf: Any, scorer: Any, rows: list[int]) -> None:
    """The two rows times the last hidden state must be the LM's own logits there; a one-line refusal
    where the model does more between them (a logit scale, another head)."""
    ids = torch.full((1, 6), min(100, hf.config.vocab_size - 1), dtype=torch.long)
    ids[0, ::2] = 1
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        full = hf(input_ids=ids, attention_mask=mask, logits_to_keep=1).logits[:, -1, rows].float()
        if full.shape[1] == 2:
            full = full[:, :1] - full[:, 1:]
        ours = scorer(ids, mask).float()
    worst = float((full - ours).abs().max())
    if not worst <= 1e-4 * max(1.0, float(full.abs().max())):
        raise ConfigError(f"{type(hf).__name__}: its logits are not the LM head's rows times the last hidden state "
                          f"(max diff {worst:.2e}: a logit scale or another head); the exporter cannot take two rows")


def _same_tokens(source: Any, tokenizer: TextTokenizer, pairs: list[tuple[str, str]]) -> float:
    """Share of ``pairs`` the server tokenizes exactly as CrossEncoder.preprocess does (one at a time)."""
    ce = source.reference
    prompt = ce._resolve_prompt(None, None)
    seqs, _ = tokenizer.encode(pairs, truncate=Truncate.END, field="pairs")
    same = 0
    for pair, seq in zip(pairs, seqs):
        features = ce.preprocess([pair], prompt=prompt)
        ids = features["input_ids"][0][features["attention_mask"][0].bool()].numpy()
        same += int(np.array_equal(ids, seq.ids))
    return same / len(pairs)


CAUSAL_RERANK = CausalRerankExport()
