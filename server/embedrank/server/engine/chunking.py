"""Long inputs as overlapping token windows (LongInput.CHUNK), and how window results combine.

A text is tokenized once without special tokens to get its tokens, offsets and word ids. The
window budget is the model's max_tokens minus its special tokens and the prompt (Encode) or the
query (Rerank): every window is a full model input on its own. Windows advance by
``size - overlap`` tokens and end on a word boundary unless one word fills the whole window, so
consecutive windows share at least ``overlap`` tokens. Each window's text is ``text[start:end]``
(character offsets from the tokenizer) and is tokenized again as the model's input: the server
runs exactly what sentence-transformers would run on that slice.

Encode combines a text's window vectors as their token-weighted mean; Rerank keeps the best
window's score (MaxP).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from embedrank.server.engine.requests import LongInput, TextChunk
from embedrank.model.tokenize import TextTokenizer, Truncate
from embedrank.model.errors import InvalidArgument
from embedrank.model.runtime.base import TokenSeq

# Default overlap: this many tokens, but never more than a quarter of the window.
DEFAULT_OVERLAP = 32


@dataclasses.dataclass(frozen=True)
class ChunkLimits:
    per_text: int = 64
    per_request: int = 1024


def check_options(
    long_input: LongInput, *, truncate: Truncate, overlap: int | None, return_chunks: bool = False
) -> None:
    """Option combinations that cannot work, refused before any work."""
    if long_input is LongInput.CHUNK:
        if truncate is Truncate.NONE:
            raise InvalidArgument(
                "long_input",
                "CHUNK splits long inputs while truncation NONE refuses them; use truncation END (or unset) with CHUNK",
            )
        return
    if overlap is not None:
        raise InvalidArgument("chunk_overlap", "applies only with long_input CHUNK")
    if return_chunks:
        raise InvalidArgument("return_chunks", "applies only with long_input CHUNK")


def windows(word_starts: Sequence[bool], *, size: int, overlap: int) -> list[tuple[int, int]]:
    """Token ranges [start, end) of at most ``size`` tokens covering all ``len(word_starts)`` tokens.

    Consecutive windows share at least ``overlap`` tokens (``0 <= overlap < size``). A window end
    or start inside a word moves back to the word's first token, unless that leaves the window no
    new tokens (a word longer than the window is then cut).
    """
    n = len(word_starts)
    if n <= size:
        return [(0, n)]
    out: list[tuple[int, int]] = []
    start = 0
    while True:
        end = min(start + size, n)
        if end < n:
            w = end
            while w > start and not word_starts[w]:
                w -= 1
            if w > start + overlap:
                end = w
        out.append((start, end))
        if end >= n:
            return out
        nxt = end - overlap  # > start: end > start + overlap
        w = nxt
        while w > start and not word_starts[w]:
            w -= 1
        start = w if w > start else nxt


def window_count(n: int, *, size: int, overlap: int) -> int:
    """Windows of ``n`` tokens without word snapping: a lower bound, cheap, for early refusal."""
    return 1 if n <= size else 1 + -(-(n - size) // (size - overlap))


class Chunker:
    """A tokenize step for ``ServedModel.run``: splits each text into windows and tokenizes them.

    Encode: ``prefix`` is the prompt, each window's input is ``prefix + text[start:end]``.
    Rerank: ``query`` is set, each window's input is the pair ``(query, doc[start:end])``.
    After the call, ``chunks`` holds every window (text by text) in the order of the sequences.
    """

    def __init__(
        self,
        tokenizer: TextTokenizer,
        *,
        overlap: int | None,
        limits: ChunkLimits,
        truncate: Truncate,
        field: str,
        prefix: str = "",
        query: str | None = None,
    ) -> None:
        self._tokenizer = tokenizer
        self._truncate = truncate
        self._field = field
        self._prefix = prefix
        self._query = query
        self._limits = limits
        pair = query is not None
        specials = tokenizer.special_tokens(pair=pair)
        fixed = tokenizer.count(query) if query is not None else tokenizer.count(prefix)
        self.size = tokenizer.max_tokens - specials - fixed
        what = "the query" if pair else "the prompt"
        if self.size < 1:
            raise InvalidArgument(
                "query" if pair else "prompt_name",
                f"{what} takes {fixed} tokens, which with {specials} special tokens leaves no room for text "
                f"in the model's {tokenizer.max_tokens}",
            )
        if overlap is None:
            overlap = min(DEFAULT_OVERLAP, self.size // 4)
        if overlap >= self.size:
            raise InvalidArgument(
                "chunk_overlap",
                f"{overlap} tokens is not below the window of {self.size} tokens (the model's "
                f"{tokenizer.max_tokens} minus {specials} special tokens and {fixed} of {what})",
            )
        self.overlap = overlap
        self.chunks: list[TextChunk] = []

    def __call__(self, texts: Sequence[str]) -> tuple[list[TokenSeq], list[bool]]:
        spans: list[tuple[int, int, int]] = []  # (text index, start char, end char)
        encodings = self._tokenizer.content_tokens(texts)
        for i, (text, enc) in enumerate(zip(texts, encodings)):
            n = len(enc.ids)
            if n <= self.size:
                spans.append((i, 0, len(text)))
                continue
            lower = window_count(n, size=self.size, overlap=self.overlap)
            if lower > self._limits.per_text:
                self._too_many(i, lower)
            words = enc.word_ids
            starts = [k == 0 or words[k] is None or words[k] != words[k - 1] for k in range(n)]
            ranges = windows(starts, size=self.size, overlap=self.overlap)
            if len(ranges) > self._limits.per_text:
                self._too_many(i, len(ranges))
            offsets = enc.offsets
            spans.extend((i, offsets[s][0], offsets[e - 1][1]) for s, e in ranges)
            if len(spans) > self._limits.per_request:
                break
        if len(spans) > self._limits.per_request:
            raise InvalidArgument(
                self._field,
                f"splits into {len(spans)}+ chunks, over the limit of {self._limits.per_request} per request "
                "(--max-chunks-per-request); send fewer or shorter texts per request",
            )
        if self._query is not None:
            inputs: list[str] | list[tuple[str, str]] = [(self._query, texts[i][a:b]) for i, a, b in spans]
        else:
            inputs = [self._prefix + texts[i][a:b] for i, a, b in spans]
        seqs, flags = self._tokenizer.encode(inputs, truncate=self._truncate, field=self._field)
        self.chunks = [TextChunk(i, a, b, seq.length) for (i, a, b), seq in zip(spans, seqs)]
        return seqs, flags

    def _too_many(self, i: int, count: int) -> None:
        raise InvalidArgument(
            f"{self._field}[{i}]",
            f"splits into {count} chunks of {self.size} tokens, over the limit of {self._limits.per_text} "
            "per text (--max-chunks-per-text); split the text or lower chunk_overlap",
        )

    def owners(self) -> np.ndarray:
        return np.fromiter((c.text_index for c in self.chunks), dtype=np.int64, count=len(self.chunks))


def weighted_mean(rows: np.ndarray, owners: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """Per owner 0..n-1, the mean of its rows weighted by ``weights`` (float64 sums, float32 out)."""
    sums = np.zeros((n, rows.shape[1]), dtype=np.float64)
    np.add.at(sums, owners, rows.astype(np.float64) * weights[:, None])
    totals = np.bincount(owners, weights=weights.astype(np.float64), minlength=n)
    return (sums / totals[:, None]).astype(np.float32)


def best_rows(scores: np.ndarray, owners: np.ndarray, n: int) -> np.ndarray:
    """Per owner 0..n-1, the index of its highest ``scores`` row (the first on ties): MaxP."""
    best = np.full(n, -1, dtype=np.int64)
    for row, owner in enumerate(owners):
        b = best[owner]
        if b < 0 or scores[row] > scores[b]:
            best[owner] = row
    return best
