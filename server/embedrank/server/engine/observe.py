"""The engine's one reporting hook: what a request did at each stage, for traces, logs and the access log.

Tracing is a layer around the engine (STYLE.md rule 11): the transport (server/api for gRPC, server/http
for HTTP) opens a ``Scope`` per request and puts it in ``current``; the engine reports into it from the
place ``Metadata.timing`` comes from (``ServedModel.run``, the batcher's finished batch, model loads)
and never imports OpenTelemetry. When tracing is on the transport installs a ``Sink`` (server/api/tracing.py)
that turns the reports into spans; when it is off ``sink`` is None and each report is one attribute
read and a comparison.

Times are ``time.monotonic_ns()`` values; the sink converts them to wall-clock time.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol


@dataclasses.dataclass(slots=True)
class Scope:
    """One request (or one stream, or one item of a stream) as the transport opened it; the engine adds what it
    learned."""

    request_id: str
    span: Any = None  # the transport's request span, opaque here (None: not traced or not sampled)
    route: str = ""  # the RPC or HTTP route, as the access log names it
    items: int | None = None  # a bidi stream: the items it has carried so far (None: not a stream)
    stream: Scope | None = None  # an item of a stream: the stream's scope, which adds up its items' usage
    model: str = ""
    version: int = 0
    kind: str = ""
    inputs: int = 0
    tokens: int = 0
    windows: int = 0  # long_input CHUNK: token windows run (0: not chunked)
    ran_ns: int = 0  # when the engine's work (tokenize, queue, model) ended: post-processing starts
    runs: list[Stages] | None = None  # traced: the engine's runs, made into spans when the request ends
    batch_links: list[Any] | None = None  # traced: the batches that ran its inputs


@dataclasses.dataclass(frozen=True, slots=True)
class Stages:
    """One engine run of a request: tokenize [start, tokenized], queue [tokenized, queued], model
    [queued, ran] (first batch start to the last result back: several batches when the request was
    split), all monotonic ns."""

    start: int
    tokenized: int
    queued: int
    ran: int
    inputs: int
    sequences: int
    tokens: int
    chunked: bool


@dataclasses.dataclass(frozen=True, slots=True)
class BatchRun:
    """One batch run: the requests it served (their scopes), its size, tokens and padding."""

    model: str
    kind: str
    start: int
    end: int
    size: int
    tokens: int
    padded_tokens: int
    lone: bool
    error: BaseException | None = None


class Sink(Protocol):
    """What the transport's tracing layer implements (server/api/tracing.py)."""

    def batch(self, scopes: Sequence[Scope], run: BatchRun) -> dict[str, str] | None:
        """Records the batch; returns its exemplar (trace and span id) when sampled."""

    def span(self, name: str, attributes: dict[str, str | int | float | bool]) -> contextlib.AbstractContextManager[None]: ...

    def ids(self, scope: Scope) -> tuple[str, str]:
        """The (trace id, span id) of a traced request, in hex."""


current: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("embedrank_request", default=None)
sink: Sink | None = None  # set by install(): tracing on


def install(new: Sink | None) -> None:
    global sink
    sink = new


def traced() -> Scope | None:
    """The current request's scope when its span is recorded (the batcher keeps it with each input)."""
    scope = current.get()
    return scope if scope is not None and scope.span is not None else None


def request_done(
    *, model: str, version: int, kind: str, start: int, tokenized: int, queue_ns: int, ran: int,
    inputs: int, sequences: int, tokens: int, chunked: bool,
) -> None:
    """ServedModel.run's report, where the request's Usage (Metadata.timing) is made."""
    scope = current.get()
    if scope is None:
        return
    scope.model, scope.version, scope.kind = model, version, kind
    scope.inputs += inputs
    scope.tokens += tokens
    if chunked:
        scope.windows += sequences
    scope.ran_ns = ran
    if scope.span is not None:  # spans made when the request ends, after its answer is on its way
        queued = min(tokenized + queue_ns, ran)
        stages = Stages(start, tokenized, queued, ran, inputs, sequences, tokens, chunked)
        if scope.runs is None:
            scope.runs = [stages]
        else:
            scope.runs.append(stages)


def log_fields() -> dict[str, str] | None:
    """request_id, and trace_id / span_id when traced, for a log line written inside a request."""
    scope = current.get()
    return None if scope is None else ids_of(scope)


def ids_of(scope: Scope) -> dict[str, str]:
    if scope.span is None or sink is None:
        return {"request_id": scope.request_id}
    trace_id, span_id = sink.ids(scope)
    return {"trace_id": trace_id, "span_id": span_id, "request_id": scope.request_id}


def exemplar() -> dict[str, str] | None:
    """The current request's trace, for a latency histogram's exemplar; None when not traced."""
    scope = current.get()
    if scope is None or scope.span is None or sink is None:
        return None
    trace_id, span_id = sink.ids(scope)
    return {"trace_id": trace_id, "span_id": span_id}


def span(name: str, **attributes: str | int | float | bool) -> contextlib.AbstractContextManager[None]:
    """A span of the server's own work (a model load, a self check, a hot swap); nothing when tracing is off."""
    if sink is None:
        return contextlib.nullcontext()
    return sink.span(name, attributes)

