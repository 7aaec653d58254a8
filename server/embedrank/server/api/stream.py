"""Bidi streams: many requests on one stream, answered in request order, a bounded number at a time.

Each item is a request of its own, as a unary call is: its own request id, log lines, span (a child of the
stream's) and access-log line (server/api/context.py), counted and timed in the metrics under the stream's RPC."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from embedrank.server import metrics
from embedrank.server.api.context import Observer
from embedrank.server.api.drain import SHUTTING_DOWN, Calls
from embedrank.server.api.status import (
    REQUEST_ID_HEADER, new_request_id, request_id, stream_error_fields, to_grpc_status,
)
from embedrank.server.engine import observe
from embedrank.server.engine.served import one_caller
from embedrank.model.errors import EmbedRankError, Unavailable
from embedrank.v1 import common_pb2

Req = TypeVar("Req")
Resp = TypeVar("Resp")


async def ordered(
    requests: AsyncIterable[Req],
    handle: Callable[[Req], Awaitable[Resp]],
    *,
    max_inflight: int,
    calls: Calls | None = None,
) -> AsyncIterator[Resp]:
    """Start ``handle`` for each request as it arrives (at most ``max_inflight`` unanswered)
    and yield the responses in request order. ``handle`` must turn errors into responses.

    When ``calls`` starts draining, reading stops, the requests already read are answered,
    and the stream ends with UNAVAILABLE (raised as errors.Unavailable)."""
    permits = asyncio.Semaphore(max_inflight)
    pending: asyncio.Queue[asyncio.Task[Resp] | None] = asyncio.Queue()

    async def read() -> None:
        try:
            async for request in requests:
                await permits.acquire()
                pending.put_nowait(asyncio.ensure_future(handle(request)))
        finally:
            pending.put_nowait(None)

    reader = asyncio.ensure_future(read())
    stop_reading = calls.on_drain(reader.cancel) if calls is not None else contextlib.nullcontext()
    try:
        with stop_reading:
            while (task := await pending.get()) is not None:
                try:
                    response = await task
                finally:
                    permits.release()
                yield response
            await asyncio.wait([reader])
            if reader.cancelled():  # only the drain cancels the reader while we wait here
                raise Unavailable(SHUTTING_DOWN)
            reader.result()  # a broken request stream surfaces here
    finally:
        reader.cancel()
        while not pending.empty():
            task = pending.get_nowait()
            if task is not None:
                task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader


class _ItemFailed(Exception):
    """An item failed: its error, its request id and its status (made once: an unexpected error is logged once)."""

    def __init__(self, error: BaseException, request_id: str, status: grpc.Status) -> None:
        super().__init__(str(error))
        self.error = error
        self.request_id = request_id
        self.status = status


async def serve_item(
    run: Callable[[str], Awaitable[Resp]], *, observer: Observer, calls: Calls, rpc: str, item_id: str = "",
) -> Resp | _ItemFailed:
    """One item of a stream, ``run(request_id)``, as a request of its own, in the item's own task (``ordered``
    starts one per item): a new request id and scope (its engine reports, log lines, span, access-log line),
    counted and timed in the metrics under the stream's RPC like a unary call. Its span and line end when its
    answer is ready (an answer then waiting behind an earlier, slower item adds to that item's time, not its own).
    An item cancelled before its answer (the stream ended first) is logged CANCELLED and, as a cancelled unary
    call, not counted."""
    rid = new_request_id()
    start = time.monotonic_ns()
    scope = observer.open_item(observe.current.get(), rid, rpc=rpc, item_id=item_id)
    observe.current.set(scope)  # the item's own task: no reset needed
    try:
        with calls.item():  # the drain serves it like a call of its own
            answer = await run(rid)
    except asyncio.CancelledError:
        observer.close(scope, start, route=scope.route, code="CANCELLED", status="CANCELLED", error=True)
        raise
    except Exception as exc:  # the item's error (unexpected ones are logged as bugs)
        status = to_grpc_status(exc, rid)
        code = status.code.name
        metrics.request_finished(rpc, code, (time.monotonic_ns() - start) / 1e9)
        observer.close(scope, start, route=scope.route, code=code, status=code, error=True, message=status.details)
        return _ItemFailed(exc, rid, status)
    metrics.request_finished(rpc, "OK", (time.monotonic_ns() - start) / 1e9)
    observer.close(scope, start, route=scope.route, code="OK", status="OK", error=False)
    return answer


async def answer_stream(
    requests: AsyncIterable[Any],
    call: Callable[[Any, str], Awaitable[Any]],
    response_type: Callable[..., Resp],
    *,
    context: grpc.aio.ServicerContext,
    calls: Calls,
    observer: Observer,
    max_inflight: int,
    rpc: str,
) -> AsyncIterator[Resp]:
    """The ...Stream RPCs: each item ``{id, request}`` is answered by ``{id, response}`` or, when
    ``call(request, request_id)`` raises, by ``{id, error}``; the stream goes on either way.
    The stream's requests queue as one caller, so its oldest request is served first."""
    one_caller()

    async def handle(item: Any) -> Resp:
        answer = await serve_item(lambda rid: call(item.request, rid), observer=observer, calls=calls, rpc=rpc,
                                  item_id=item.id)
        if isinstance(answer, _ItemFailed):
            code, message, field = stream_error_fields(answer.error, answer.status)
            return response_type(id=item.id, error=common_pb2.StreamError(code=code, message=message, field=field))
        return response_type(id=item.id, response=answer)

    try:
        with calls.track(stream=True):
            async for response in ordered(requests, handle, max_inflight=max_inflight, calls=calls):
                yield response
    except EmbedRankError as exc:  # draining (UNAVAILABLE, retryable) or a malformed item
        status = to_grpc_status(exc, new_request_id())
        metrics.REQUESTS.labels(rpc, status.code.name).inc()
        await context.abort(status.code, status.details)


async def answer_plain_stream(
    requests: AsyncIterable[Any],
    call: Callable[[Any, str], Awaitable[Resp]],
    *,
    context: grpc.aio.ServicerContext,
    calls: Calls,
    observer: Observer,
    max_inflight: int,
    rpc: str,
) -> AsyncIterator[Resp]:
    """Streams of the unary RPC's own messages, as TEI's tei.v1 has them (no id, no error item):
    each answered in order by ``call(request, request_id)``; the first item that fails ends the
    stream with its status, after the answers of the items before it."""
    one_caller()

    async def handle(request: Any) -> Resp | _ItemFailed:
        return await serve_item(lambda rid: call(request, rid), observer=observer, calls=calls, rpc=rpc)

    try:
        with calls.track(stream=True):
            async for answer in ordered(requests, handle, max_inflight=max_inflight, calls=calls):
                if isinstance(answer, _ItemFailed):
                    raise answer
                yield answer
    except (EmbedRankError, _ItemFailed) as exc:  # an item's error (counted as the item's), draining, a malformed item
        if isinstance(exc, _ItemFailed):
            status = exc.status
        else:
            status = to_grpc_status(exc, request_id())
            metrics.REQUESTS.labels(rpc, status.code.name).inc()
        await context.abort(status.code, status.details,  # the trailer the context interceptor set is replaced
                            trailing_metadata=(*status.trailing_metadata, (REQUEST_ID_HEADER, request_id())))
