"""TEI's (text-embeddings-inference) HTTP bodies <-> the engine's dataclasses, and TEI's error body.

Shapes read from TEI's docs/openapi.json and router/src/http/types.rs (0d124dc, 2026-07). A wrong
type or value is an InvalidArgument naming the field as the caller wrote it (``inputs[2]``,
``inputs.sentences[0]``); an empty list is EmptyInput (TEI: 400 ``Empty``). Fields TEI defines
that we do not use are ignored, as TEI's serde does with unknown ones.

    {"error": "inputs[1]: must be a string, got a number", "error_type": "Validation"}
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import re
from collections.abc import Callable, Iterator
from typing import Any

from embedrank.model import errors
from embedrank.model.errors import EmptyInput, InvalidArgument
from embedrank.model.tokenize import Truncate
from embedrank.server.engine.tokens import TokenizedInput
from embedrank.server.http.errors import Answer
from embedrank.server.http.schemas import _bool, _kind, _str
from embedrank.server.http.serving import RequestState
from embedrank.server.statuses import status_of

log = logging.getLogger(__name__)

TOKEN_IDS = "holds token ids; this server tokenizes itself: send text (a string or a list of strings)"
# TEI's serde aliases, exactly (router/src/http/types.rs TruncationDirection).
_DIRECTION = {"Left": Truncate.START, "left": Truncate.START, "Right": Truncate.END, "right": Truncate.END}
_FIELD = re.compile(r"^([A-Za-z_]+)(?:\[(\d+)\])?(.*)$")
# The engine's field -> the caller's: (head, index or None, rest) -> the field as sent.
Rename = Callable[[str, int | None, str], str]


def tei_error(exc: BaseException, rid: str, state: RequestState) -> Answer:
    """TEI's error body and status for any exception, from the one status table's TEI column;
    unexpected ones are logged (as bugs) and hidden behind a generic message with the request id."""
    row = status_of(exc)
    headers = {"X-Request-Id": rid}
    if isinstance(exc, errors.EmbedRankError):
        message = exc.message
        if isinstance(exc, errors.ResourceExhausted) and not isinstance(exc, errors.MessageTooLarge):
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    else:
        log.error("request %s failed", rid, exc_info=exc)
        message = f"internal error (request id {rid})"
    return Answer(row.tei_http, {"error": message, "error_type": row.tei_type}, headers, row.grpc)


@contextlib.contextmanager
def fields(rename: Rename) -> Iterator[None]:
    """Engine errors inside name the caller's field (``texts[2]`` -> ``inputs[2]``)."""
    try:
        yield
    except InvalidArgument as exc:
        match = _FIELD.match(exc.field)
        if match is None:
            raise
        head, index, rest = match.groups()
        field = rename(head, None if index is None else int(index), rest)
        raise type(exc)(field, exc.description) from None


def inputs_field(scalar: bool) -> Rename:
    """``texts[i]`` -> ``inputs[i]`` (``inputs`` when one string was sent)."""
    def rename(head: str, index: int | None, rest: str) -> str:
        if head != "texts":
            return head + ("" if index is None else f"[{index}]") + rest
        if index is None or (scalar and index == 0):
            return "inputs" + rest
        return f"inputs[{index}]{rest}"
    return rename


def under(where: str) -> Rename:
    """The engine's ``ids[j]`` -> ``where[j]`` (one list of a /decode batch)."""
    def rename(head: str, index: int | None, rest: str) -> str:
        return where + ("" if index is None else f"[{index}]") + rest
    return rename


def texts(body: dict[str, Any]) -> tuple[list[str], bool]:
    """``inputs``: a string or a list of strings (TEI's token-id inputs are refused: we tokenize).
    Returns the texts and whether one string was sent."""
    raw = body.get("inputs")
    if raw is None:
        raise InvalidArgument("inputs", "is required: a string or a list of strings")
    if isinstance(raw, str):
        return [raw], True
    if not isinstance(raw, list):
        raise InvalidArgument("inputs", f"must be a string or a list of strings, got {_kind(raw)}")
    if raw and all(isinstance(x, int) and not isinstance(x, bool) for x in raw):
        raise InvalidArgument("inputs", TOKEN_IDS)  # one input as token ids
    for i, item in enumerate(raw):
        if not isinstance(item, str):
            if isinstance(item, list):
                raise InvalidArgument("inputs", TOKEN_IDS)
            raise InvalidArgument(f"inputs[{i}]", f"must be a string, got {_kind(item)}")
    return raw, False


def truncation(body: dict[str, Any], where: str = "") -> Truncate:
    """``truncate`` (absent or null: true, TEI's --auto-truncate default) and ``truncation_direction``."""
    value = body.get("truncation_direction")
    if value is None:
        direction = Truncate.END
    elif isinstance(value, str) and value in _DIRECTION:
        direction = _DIRECTION[value]
    else:
        raise InvalidArgument(f"{where}truncation_direction", f"{value!r} is not one of 'Left', 'Right'")
    try:
        cut = _bool(body, "truncate", True)
    except InvalidArgument as exc:
        raise InvalidArgument(where + exc.field, exc.description) from None
    return direction if cut else Truncate.NONE


def prompt_name(body: dict[str, Any], where: str = "") -> str:
    try:
        return _str(body, "prompt_name")
    except InvalidArgument as exc:
        raise InvalidArgument(where + exc.field, exc.description) from None


def dimensions(body: dict[str, Any]) -> int:
    """``dimensions``: null or 0 -> the model's own."""
    value = body.get("dimensions")
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument("dimensions", f"must be an integer, got {_kind(value)}")
    if value < 0:
        raise InvalidArgument("dimensions", f"must be >= 0, got {value}")
    return value


def string_list(body: dict[str, Any], name: str) -> list[str]:
    raw = body.get(name)
    if raw is None:
        raise InvalidArgument(name, "is required: a list of strings")
    if not isinstance(raw, list):
        raise InvalidArgument(name, f"must be a list of strings, got {_kind(raw)}")
    for i, item in enumerate(raw):
        if not isinstance(item, str):
            raise InvalidArgument(f"{name}[{i}]", f"must be a string, got {_kind(item)}")
    return raw


def required_str(body: dict[str, Any], name: str, where: str = "") -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise InvalidArgument(where + name, "is required: a string" if value is None
                              else f"must be a string, got {_kind(value)}")
    return value


@dataclasses.dataclass(frozen=True)
class PredictInputs:
    """``inputs`` of POST /predict: a string, a pair [a, b], or a batch of [a] / [a, b] items."""

    single: bool  # one input (answer: one list of labels), not a batch
    texts: list[tuple[int, str]]  # (position in the request, text)
    pairs: list[tuple[int, tuple[str, str]]]


def predict_inputs(body: dict[str, Any]) -> PredictInputs:
    raw = body.get("inputs")
    if raw is None:
        raise InvalidArgument("inputs", "is required: a string, a pair [a, b], or a list of [a] / [a, b]")
    if isinstance(raw, str):
        return PredictInputs(True, [(0, raw)], [])
    if not isinstance(raw, list):
        raise InvalidArgument("inputs", f"must be a string, a pair or a list, got {_kind(raw)}")
    if not raw:
        raise EmptyInput("inputs", "is empty; send at least one")
    if all(isinstance(x, str) for x in raw):  # one input: [a] or [a, b]
        return _sequence(raw, "inputs", 0, PredictInputs(True, [], []))
    found = PredictInputs(False, [], [])
    for i, item in enumerate(raw):
        if not isinstance(item, list) or not all(isinstance(x, str) for x in item):
            raise InvalidArgument(f"inputs[{i}]", f"must be [text] or [text, text_pair], got {_kind(item)}")
        _sequence(item, f"inputs[{i}]", i, found)
    return found


def _sequence(item: list[str], field: str, position: int, into: PredictInputs) -> PredictInputs:
    if len(item) == 1:
        into.texts.append((position, item[0]))
    elif len(item) == 2:
        into.pairs.append((position, (item[0], item[1])))
    else:
        raise InvalidArgument(field, f"has {len(item)} strings; send one text or a pair of two")
    return into


def predict_field(inputs: PredictInputs) -> Rename:
    """The engine's ``texts[j]`` / ``pairs[j].second`` -> the request's ``inputs[i]`` / ``inputs[i][1]``."""
    def rename(head: str, index: int | None, rest: str) -> str:
        if head not in ("texts", "pairs") or index is None:
            return "inputs"
        if inputs.single:
            return "inputs" if head == "texts" else f"inputs[{1 if rest == '.second' else 0}]"
        position = (inputs.texts if head == "texts" else inputs.pairs)[index][0]
        side = {".first": "[0]", ".second": "[1]"}.get(rest, "")
        return f"inputs[{position}]{side}"
    return rename


def tei_tokens(tokenized: TokenizedInput, text: str, *, add_special_tokens: bool) -> list[dict[str, Any]]:
    """TEI's SimpleToken list: offsets are UTF-8 byte offsets into prompt + text (what TEI's
    tokenizer read); special tokens carry their token text and no offsets."""
    full = tokenized.prompt + text
    shift = len(tokenized.prompt)
    out: list[dict[str, Any]] = []
    for t in tokenized.tokens:
        if t.special:
            if add_special_tokens:
                out.append({"id": t.id, "text": t.text, "special": True, "start": None, "stop": None})
            continue
        start, end = (t.start, t.end) if t.prompt else (t.start + shift, t.end + shift)
        byte_start = len(full[:start].encode("utf-8"))
        out.append({"id": t.id, "text": full[start:end], "special": False, "start": byte_start,
                    "stop": byte_start + len(full[start:end].encode("utf-8"))})
    return out
