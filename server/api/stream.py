"""Bidi streams: many requests on one stream, answered in request order, a bounded number at a time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from embedrank.server import metrics
from embedrank.server.api.status import code_name, new_request_id, stream_error_fields
from embedrank.v1 import common_pb2

Req = TypeVar("Req")
Resp = TypeVar("Resp")


async def ordered(
    requests: AsyncIterable[Req], handle: Callable[[Req], Awaitable[Resp]], *, max_inflight: int
) -> AsyncIterator[Resp]:
    """Start ``handle`` for each request as it arrives (at most ``max_inflight`` unanswered)
    and yield the responses in request order. ``handle`` must turn errors into responses."""
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
    try:
        while (task := await pending.get()) is not None:
            try:
                response = await task
            finally:
                permits.release()
            yield response
        await reader  # a broken request stream surfaces here
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
    max_inflight: int,
    rpc: str,
) -> AsyncIterator[Resp]:
    """The ...Stream RPCs: each item ``{id, request}`` is answered by ``{id, response}`` or, when
    ``call(request, request_id)`` raises, by ``{id, error}``; the stream goes on either way."""

    async def handle(item: Any) -> Resp:
        rid = new_request_id()
        try:
            response = await call(item.request, rid)
        except Exception as exc:  # becomes this item's error (unexpected ones are logged as bugs)
            code, message, field = stream_error_fields(exc, rid)
            metrics.REQUESTS.labels(rpc, code_name(code)).inc()
            return response_type(id=item.id, error=common_pb2.StreamError(code=code, message=message, field=field))
        metrics.REQUESTS.labels(rpc, "OK").inc()
        return response_type(id=item.id, response=response)

    async for response in ordered(requests, handle, max_inflight=max_inflight):
        yield response
