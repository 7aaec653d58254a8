"""Rerankers built on a causal LM (a variant of the rerank kind): how their pairs become tokens.

sentence-transformers 6 loads them as a ``CrossEncoder`` whose chain is ``Transformer`` with
``transformer_task="text-generation"`` and ``LogitScore(true_token_id, false_token_id)``: the score is
``logit[yes] - logit[no]`` at the last real token. The graph computes exactly that (the last token's
hidden state times two rows of the LM head); what is left to the server is to put each (query,
document) pair into tokens as the library does, which is this module's :class:`CausalPairs`:

- ``pair`` format (a tokenizer without a chat template): the library's text-pair encoding, with the
  default prompt (``default_prompt_name``) before the query, as ``CrossEncoder.predict`` puts it.
- ``chat`` format: the chat template renders ``[system: prompt], query, document`` messages to one
  string, tokenized without special tokens. The exporter renders the template once around two
  sentinel texts and stores the fixed text between them (``segments``); it checks that the template
  only substitutes the texts (no filter or branch on their content), so the server needs no template
  engine. Past ``max_tokens`` the library cuts the end and writes the template's suffix tokens back
  over the last positions (``suffix_ids``: its last token is what the score reads), and so does this.

Padding: the library pads left so that the last column is each row's last real token; the graph finds
each row's last real token and numbers positions from its first one, so either side gives the same
scores (the runtime pads right, as for every model).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from typing import Any

import numpy as np
from tokenizers import Encoding

from embedrank.model.errors import InvalidArgument, ManifestError
from embedrank.model.jsonread import Reader
from embedrank.model.runtime.base import TokenSeq
from embedrank.model.tokenize import TextTokenizer, Truncate

QUERY, DOCUMENT = "query", "document"  # the slots of a chat format's segments


class PairFormat(enum.Enum):
    PAIR = "pair"  # the tokenizer's text-pair encoding (special tokens as the tokenizer adds them)
    CHAT = "chat"  # the chat template, rendered, tokenized without special tokens


@dataclasses.dataclass(frozen=True)
class CausalSpec:
    true_token_id: int
    false_token_id: int | None  # None: the score is logit[true] alone
    format: PairFormat
    prompt: str  # PAIR: put before the query; CHAT: already rendered into the segments (the system message)
    segments: tuple[str, ...] = ()  # CHAT: literal text and the slots "query" / "document" (as {"slot": ...})
    slots: tuple[int, ...] = ()  # CHAT: indices of the slots in segments
    suffix_ids: tuple[int, ...] = ()  # CHAT: written back over the last tokens of a row cut at max_tokens

    def render(self, query: str, document: str) -> str:
        parts = list(self.segments)
        for i in self.slots:
            parts[i] = query if self.segments[i] == QUERY else document
        return "".join(parts)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"true_token_id": self.true_token_id, "false_token_id": self.false_token_id,
                               "format": self.format.value, "prompt": self.prompt}
        if self.format is PairFormat.CHAT:
            out["segments"] = [{"slot": s} if i in self.slots else s for i, s in enumerate(self.segments)]
            out["suffix_ids"] = list(self.suffix_ids)
        return out


def parse(r: Reader, *, where: str) -> CausalSpec:
    """The rerank section's ``causal`` object."""
    fmt = r.enum("format", PairFormat)
    false_id = r.get("false_token_id", int, None)
    base = dict(true_token_id=r.get("true_token_id", int), false_token_id=false_id, format=fmt,
                prompt=r.get("prompt", str, ""))
    if fmt is PairFormat.PAIR:
        return CausalSpec(**base)
    segments: list[str] = []
    slots: list[int] = []
    for item in r.get("segments", list):
        if isinstance(item, str):
            segments.append(item)
        elif isinstance(item, dict) and item.get("slot") in (QUERY, DOCUMENT):
            slots.append(len(segments))
            segments.append(item["slot"])
        else:
            raise ManifestError(f"{where}: rerank.causal.segments holds texts and {{\"slot\": \"query\"|\"document\"}} "
                                f"objects, not {item!r}; re-export the model")
    if sorted(segments[i] for i in slots) != [DOCUMENT, QUERY]:
        raise ManifestError(f"{where}: rerank.causal.segments must hold the query and the document slot once each")
    suffix = r.get("suffix_ids", list)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in suffix):
        raise ManifestError(f"{where}: rerank.causal.suffix_ids must be token ids")
    return CausalSpec(**base, segments=tuple(segments), slots=tuple(slots), suffix_ids=tuple(suffix))


class CausalPairs(TextTokenizer):
    """The model's tokenizer, with (query, document) pairs formatted as the library formats them for
    this reranker. Single texts (Tokenize) are the tokenizer's own."""

    def __init__(self, base: TextTokenizer, spec: CausalSpec) -> None:
        self.__dict__.update(base.__dict__)  # the same tokenizers, shared (none is mutated after init)
        self.spec = spec
        if spec.format is PairFormat.CHAT:
            empty = self._base.encode(spec.render("", ""), add_special_tokens=False)
            self._overhead = len(empty.ids)
        else:
            self._overhead = base.special_tokens(pair=True) + base.count(spec.prompt)

    def encode(
        self, inputs: Sequence[str] | Sequence[tuple[str, str]], *, truncate: Truncate, field: str
    ) -> tuple[list[TokenSeq], list[bool]]:
        if not inputs or isinstance(inputs[0], str):
            return super().encode(inputs, truncate=truncate, field=field)
        pairs: list[tuple[str, str]] = [tuple(p) for p in inputs]  # type: ignore[misc]
        if self.spec.format is PairFormat.PAIR:
            prompt = self.spec.prompt
            return super().encode([(prompt + q, d) for q, d in pairs], truncate=truncate, field=field)
        encodings = self._base.encode_batch([self.spec.render(q, d) for q, d in pairs], add_special_tokens=False)
        seqs, flags = [], []
        for i, enc in enumerate(encodings):
            ids, cut = self._fit(enc, truncate=truncate, field=f"{field}[{i}]")
            seqs.append(TokenSeq(ids, np.zeros_like(ids) if self._with_type_ids else None))
            flags.append(cut)
        return seqs, flags

    def _fit(self, enc: Encoding, *, truncate: Truncate, field: str) -> tuple[np.ndarray, bool]:
        """One rendered pair at most ``max_tokens`` long, cut as sentence-transformers cuts it."""
        ids = np.asarray(enc.ids, dtype=np.int64)
        n, limit = ids.shape[0], self.max_tokens
        if truncate is Truncate.NONE and n > limit:
            raise InvalidArgument(field, f"{n} tokens with the model's chat template, over its {limit}; "
                                         "shorten it or allow truncation (END or START)")
        if truncate is Truncate.START and n > limit:
            return ids[n - limit:], True
        if n >= limit and truncate is Truncate.END:
            ids = ids[:limit].copy()
            keep = min(len(self.spec.suffix_ids), limit)
            if keep:  # the template's end, restored over the last positions (the score reads the last one)
                ids[limit - keep:] = self.spec.suffix_ids[-keep:]
        return ids, n > limit

    def encodings(self, inputs: Sequence[str] | Sequence[tuple[str, str]], *, truncate: Truncate) -> list[Encoding]:
        if inputs and not isinstance(inputs[0], str) and (self.spec.format is PairFormat.CHAT or self.spec.prompt):
            raise InvalidArgument("pairs", "this reranker puts pairs into its prompt or chat template; Tokenize "
                                           "shows single texts on it (send texts)")
        return super().encodings(inputs, truncate=truncate)

    def special_tokens(self, *, pair: bool) -> int:
        """Pairs: every token the format adds around query and document (template text, prompt, specials)."""
        return self._overhead if pair else super().special_tokens(pair=False)
