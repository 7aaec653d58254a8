"""Bidi streams: many requests on one stream, answered in request order, a bounded number at a time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import TypeVar

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
