"""Tokenize and Decode for every model: the tokens a model reads, without running it.

The prompt is chosen and placed exactly as Encode places it (``ServedModel.prompt_for``) and the
tokenizer is the one Encode runs for that input type (``ServedModel.tokenizer_for``, with the
request's truncation, at that input type's length), followed by any tokens Encode appends
(``ServedModel.appended_for``: a multi-vector query's expansion, flagged special), so ids and counts are
Encode's. Spans are Unicode code points of the caller's text (prompt tokens: of the
prompt), as the chunking spans are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from tokenizers import Encoding

from embedrank.model.errors import InvalidArgument
from embedrank.model.tokenize import Truncate
from embedrank.server.engine.requests import InputType, Usage


@dataclasses.dataclass(frozen=True)
class TokenizeParams:
    texts: list[str] = dataclasses.field(default_factory=list)
    pairs: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    input_type: InputType = InputType.DEFAULT
    prompt_name: str = ""
    truncate: Truncate = Truncate.END


@dataclasses.dataclass(frozen=True)
class Token:
    id: int
    text: str
    start: int  # code points in the text (the pair's `sequence`; prompt tokens: in the prompt)
    end: int
    special: bool
    prompt: bool
    sequence: int


@dataclasses.dataclass(frozen=True)
class TokenizedInput:
    tokens: list[Token]
    truncated: bool
    prompt: str

    @property
    def token_count(self) -> int:
        return len(self.tokens)


@dataclasses.dataclass(frozen=True)
class TokenizeResult:
    inputs: list[TokenizedInput]
    max_tokens: int
    usage: Usage


@dataclasses.dataclass(frozen=True)
class DecodeResult:
    text: str
    usage: Usage


def tokens_of(
    enc: Encoding, *, prompt: str, truncate: Truncate, max_tokens: int, appended: Sequence[tuple[int, str]] = ()
) -> TokenizedInput:
    """One encoding as the caller's tokens: spans moved past the prompt, flags set; ``appended`` (id, token)
    after them, flagged special with no span (a multi-vector query's expansion tokens)."""
    cut = len(prompt)
    tokens: list[Token] = []
    for tid, text, (start, end), special, seq in zip(
        enc.ids, enc.tokens, enc.offsets, enc.special_tokens_mask, enc.sequence_ids, strict=True
    ):
        sequence = int(seq or 0)
        if special:
            tokens.append(Token(tid, text, 0, 0, True, False, sequence))
        elif cut and sequence == 0 and end <= cut:
            tokens.append(Token(tid, text, start, end, False, True, sequence))
        elif cut and sequence == 0:
            tokens.append(Token(tid, text, max(0, start - cut), end - cut, False, False, sequence))
        else:
            tokens.append(Token(tid, text, start, end, False, False, sequence))
    truncated = len(tokens) > max_tokens if truncate is Truncate.NONE else bool(enc.overflowing)
    tokens.extend(Token(tid, text, 0, 0, True, False, 0) for tid, text in appended)
    return TokenizedInput(tokens, truncated, prompt)


def check_ids(ids: Sequence[int], *, vocab_size: int, max_ids: int) -> None:
    if not ids:
        raise InvalidArgument("ids", "is empty; send at least one token id")
    if len(ids) > max_ids:
        raise InvalidArgument("ids", f"has {len(ids)} ids, over the limit of {max_ids}; split the request")
    for i, tid in enumerate(ids):
        if tid >= vocab_size:
            raise InvalidArgument(f"ids[{i}]", f"{tid} is not a token of this model (its ids are below {vocab_size})")
