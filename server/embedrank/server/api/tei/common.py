"""What the tei.v1 servicers share: the model a call names (or not), TEI's truncation, its Metadata,
and field names as TEI's messages spell them."""

from __future__ import annotations

import contextlib
import importlib.metadata
from collections.abc import Iterator, Mapping

import grpc

from embedrank.model.errors import InvalidArgument
from embedrank.model.tokenize import Truncate
from embedrank.server.engine.requests import ScoreMode, Usage
from embedrank.tei.v1 import tei_pb2

# TEI's bodies name no model (it serves one). A caller of this multi-model server may name one in
# this metadata key, from any client (TEI's own stubs too); else the engine picks it (Engine.resolve:
# --default-model when of the kind the call needs, else the only model of that kind).
MODEL_KEY = "embedrank-model"

_DIRECTION: dict[int, Truncate] = {
    tei_pb2.TRUNCATION_DIRECTION_RIGHT: Truncate.END,  # TEI cuts the right end: the start is kept
    tei_pb2.TRUNCATION_DIRECTION_LEFT: Truncate.START,
}

# The engine's field names -> the TEI message's, for requests of one input.
ONE_INPUT = {"texts[0]": "inputs", "texts": "inputs"}


def model_name(context: grpc.aio.ServicerContext) -> str:
    """The model the call names in its metadata; "" when it names none."""
    for key, value in context.invocation_metadata() or ():
        if key == MODEL_KEY:
            return value if isinstance(value, str) else value.decode()
    return ""


def truncation(truncate: bool, direction: int) -> Truncate:
    """TEI's (truncate, truncation_direction): off = an over-long input is refused, as TEI does."""
    try:
        cut = _DIRECTION[direction]
    except KeyError:
        raise InvalidArgument("truncation_direction", f"{direction} is not a known value") from None
    return cut if truncate else Truncate.NONE


def scores(raw_scores: bool) -> ScoreMode:
    return ScoreMode.RAW if raw_scores else ScoreMode.ACTIVATED


def metadata(usage: Usage) -> tei_pb2.Metadata:
    t = usage.timing
    return tei_pb2.Metadata(
        compute_chars=usage.chars, compute_tokens=usage.tokens, total_time_ns=t.total_ns,
        tokenization_time_ns=t.tokenize_ns, queue_time_ns=t.queue_ns, inference_time_ns=t.inference_ns,
    )


@contextlib.contextmanager
def fields(names: Mapping[str, str]) -> Iterator[None]:
    """A bad field named as TEI's message names it (the engine's ``texts[0]`` is Embed's ``inputs``)."""
    try:
        yield
    except InvalidArgument as exc:
        field = next((new + exc.field[len(old):] for old, new in names.items() if exc.field.startswith(old)), None)
        if field is None:
            raise
        raise type(exc)(field, exc.description) from None  # the same class: a convention may tell them apart


# What TEI's Info says on both ports (http/tei.py's /info and TeiInfoServicer), in TEI's words.
_DTYPE = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def tei_dtype(precision: str) -> str:
    """The export's precision as TEI names a dtype (int8 and the like as they are)."""
    return _DTYPE.get(precision, precision)


def server_version() -> str:
    try:
        return importlib.metadata.version("embedrank")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "0"
