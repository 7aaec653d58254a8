"""Tokenization with the `tokenizers` library, under the manifest's max length.

tokenizer.json's own padding and truncation settings are ignored (the all-MiniLM-L6-v2
file pads every input to 128 tokens); we set truncation per request and never pad here.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Sequence

import numpy as np
from tokenizers import Encoding, Tokenizer

from embedrank.model.errors import InvalidArgument
from embedrank.model.runtime.base import TokenSeq


class Truncate(enum.Enum):
    END = "end"  # keep the start, like sentence-transformers
    START = "start"  # keep the end
    NONE = "none"  # refuse over-long input


class TextTokenizer:
    """Thread-safe: one `Tokenizer` per truncation mode, none of them mutated after init."""

    def __init__(self, path: str, *, max_tokens: int, with_type_ids: bool, add_special_tokens: bool = True) -> None:
        """``add_special_tokens=False``: no [CLS]/[SEP] template (an inference-free sparse query route)."""
        base = Tokenizer.from_file(path)
        base.no_padding()
        base.no_truncation()
        serialized = base.to_str()
        end, start = Tokenizer.from_str(serialized), Tokenizer.from_str(serialized)
        end.enable_truncation(max_tokens, strategy="longest_first", direction="right")
        start.enable_truncation(max_tokens, strategy="longest_first", direction="left")
        self._by_mode = {Truncate.END: end, Truncate.START: start, Truncate.NONE: base}
        self._base = base
        self._limited: dict[int, TextTokenizer] = {}
        self.max_tokens = max_tokens
        self._with_type_ids = with_type_ids
        self._specials = add_special_tokens

    def encode(
        self,
        inputs: Sequence[str] | Sequence[tuple[str, str]],
        *,
        truncate: Truncate,
        field: str,
    ) -> tuple[list[TokenSeq], list[bool]]:
        """Tokenize texts or (query, document) pairs. Returns sequences and truncated flags.

        With Truncate.NONE an over-long input raises InvalidArgument naming ``field[i]``.
        """
        encodings: list[Encoding] = self._by_mode[truncate].encode_batch(list(inputs), add_special_tokens=self._specials)
        seqs: list[TokenSeq] = []
        flags: list[bool] = []
        for i, enc in enumerate(encodings):
            ids = np.asarray(enc.ids, dtype=np.int64)
            if truncate is Truncate.NONE and ids.shape[0] > self.max_tokens:
                raise InvalidArgument(
                    f"{field}[{i}]",
                    f"{ids.shape[0]} tokens, over the model's {self.max_tokens}; "
                    "shorten it or allow truncation (END or START)",
                )
            type_ids = np.asarray(enc.type_ids, dtype=np.int64) if self._with_type_ids else None
            seqs.append(TokenSeq(ids, type_ids))
            flags.append(bool(enc.overflowing))
        return seqs, flags

    def encodings(self, inputs: Sequence[str] | Sequence[tuple[str, str]], *, truncate: Truncate) -> list[Encoding]:
        """The full encodings (ids, token strings, code-point offsets, special-token mask, sequence ids) as
        ``encode`` would run them; Truncate.NONE returns every token and never refuses."""
        return list(self._by_mode[truncate].encode_batch(list(inputs), add_special_tokens=self._specials))

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool) -> str:
        return str(self._base.decode(list(ids), skip_special_tokens=skip_special_tokens))

    @property
    def vocab_size(self) -> int:
        """Ids below this are the model's tokens (added tokens included)."""
        return int(self._base.get_vocab_size(with_added_tokens=True))
    def limited(self, max_tokens: int) -> TextTokenizer:
        """The same tokenizer truncating at ``max_tokens`` (a multi-vector model's query/document length)."""
        if max_tokens >= self.max_tokens:
            return self
        cached = self._limited.get(max_tokens)
        if cached is not None:
            return cached
        out = copy.copy(self)
        out._limited = {}
        serialized = self._base.to_str()
        end, start = Tokenizer.from_str(serialized), Tokenizer.from_str(serialized)
        end.enable_truncation(max_tokens, strategy="longest_first", direction="right")
        start.enable_truncation(max_tokens, strategy="longest_first", direction="left")
        out._by_mode = {Truncate.END: end, Truncate.START: start, Truncate.NONE: self._base}
        out.max_tokens = max_tokens
        self._limited[max_tokens] = out  # built once per length (rebuilding costs a JSON round trip)
        return out

    def id_to_token(self, token_id: int) -> str:
        """The vocabulary entry of ``token_id`` ("" for an id outside the vocabulary)."""
        return self._base.id_to_token(token_id) or ""

    def special_tokens(self, *, pair: bool) -> int:
        """Special tokens the model's template adds to one input ([CLS] ... [SEP] = 2 for BERT)."""
        return int(self._base.num_special_tokens_to_add(pair))

    def content_tokens(self, texts: Sequence[str]) -> list[Encoding]:
        """Every token of each text, untruncated and without special tokens: ids, offsets, word ids."""
        return list(self._base.encode_batch(list(texts), add_special_tokens=False))

    def count(self, text: str) -> int:
        """Tokens of ``text`` alone, without special tokens (a prompt, a query)."""
        return len(self._base.encode(text, add_special_tokens=False).ids) if text else 0
