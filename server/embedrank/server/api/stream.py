"""Bidi streams: many requests on one stream, answered in request order, a bounded number at a time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from embedrank.server import metrics
from embedrank.server.api.drain import SHUTTING_DOWN, Calls
from embedrank.server.api.status import (
    REQUEST_ID_HEADER, code_name, new_request_id, request_id, stream_error_fields, to_grpc_status,
)
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


async def answer_stream(
    requests: AsyncIterable[Any],
    call: Callable[[Any, str], Awaitable[Any]],
    response_type: Callable[..., Resp],
    *,
    context: grpc.aio.ServicerContext,
    calls: Calls,
    max_inflight: int,
    rpc: str,
) -> AsyncIterator[Resp]:
    """The ...Stream RPCs: each item ``{id, request}`` is answered by ``{id, response}`` or, when
    ``call(request, request_id)`` raises, by ``{id, error}``; the stream goes on either way.
    The stream's requests queue as one caller, so its oldest request is served first."""
    one_caller()

    async def handle(item: Any) -> Resp:
        rid = new_request_id()
        try:
            with calls.item():  # the drain serves it like a call of its own
                response = await call(item.request, rid)
        except Exception as exc:  # becomes this item's error (unexpected ones are logged as bugs)
            code, message, field = stream_error_fields(exc, rid)
            metrics.REQUESTS.labels(rpc, code_name(code)).inc()
            return response_type(id=item.id, error=common_pb2.StreamError(code=code, message=message, field=field))
        metrics.REQUESTS.labels(rpc, "OK").inc()
        return response_type(id=item.id, response=response)

    try:
        with calls.track(stream=True):
            async for response in ordered(requests, handle, max_inflight=max_inflight, calls=calls):
                yield response
    except EmbedRankError as exc:  # draining (UNAVAILABLE, retryable) or a malformed item
        status = to_grpc_status(exc, new_request_id())
        metrics.REQUESTS.labels(rpc, status.code.name).inc()
        await context.abort(status.code, status.details)


class _ItemFailed(Exception):
    """An item of a plain stream failed: the stream ends with the item's own status."""

    def __init__(self, error: BaseException, request_id: str) -> None:
        super().__init__(str(error))
        self.error = error
        self.request_id = request_id


async def answer_plain_stream(
    requests: AsyncIterable[Any],
    call: Callable[[Any, str], Awaitable[Resp]],
    *,
    context: grpc.aio.ServicerContext,
    calls: Calls,
    max_inflight: int,
    rpc: str,
) -> AsyncIterator[Resp]:
    """Streams of the unary RPC's own messages, as TEI's tei.v1 has them (no id, no error item):
    each answered in order by ``call(request, request_id)``; the first item that fails ends the
    stream with its status, after the answers of the items before it."""
    one_caller()

    async def handle(request: Any) -> Resp | _ItemFailed:
        rid = new_request_id()
        try:
            with calls.item():  # the drain serves it like a call of its own
                return await call(request, rid)
        except Exception as exc:  # ends the stream below (unexpected ones are logged as bugs)
            return _ItemFailed(exc, rid)

    try:
        with calls.track(stream=True):
            async for answer in ordered(requests, handle, max_inflight=max_inflight, calls=calls):
                if isinstance(answer, _ItemFailed):
                    raise answer
                metrics.REQUESTS.labels(rpc, "OK").inc()
                yield answer
    except (EmbedRankError, _ItemFailed) as exc:  # an item's error, draining, or a malformed item
        error, rid = (exc.error, exc.request_id) if isinstance(exc, _ItemFailed) else (exc, request_id())
        status = to_grpc_status(error, rid)
        metrics.REQUESTS.labels(rpc, status.code.name).inc()
        await context.abort(status.code, status.details,  # the trailer the context interceptor set is replaced
                            trailing_metadata=(*status.trailing_metadata, (REQUEST_ID_HEADER, request_id())))
