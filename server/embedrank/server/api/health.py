"""grpc.health.v1 whose Watch streams end when the server has drained.

grpc's aio HealthServicer keeps every Watch open until the server cancels it; ``server.stop``
would then wait out its whole grace for them (or, with no grace, cancel calls whose answers
are still on their way). ``end_watches`` ends them cleanly once the last real call is answered.
"""

from __future__ import annotations

import asyncio
from typing import Any

from grpc_health.v1 import health, health_pb2


class HealthServicer(health.aio.HealthServicer):  # type: ignore[misc]  # grpc_health has no types
    def __init__(self) -> None:
        super().__init__()
        self._ended = asyncio.Event()

    async def Watch(self, request: health_pb2.HealthCheckRequest, context: Any) -> None:  # noqa: N802
        if self._ended.is_set():
            return
        watch = asyncio.ensure_future(super().Watch(request, context))
        ended = asyncio.ensure_future(self._ended.wait())
        try:
            await asyncio.wait({watch, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (watch, ended):
                task.cancel()
        if watch.done() and not watch.cancelled():
            watch.result()

    def end_watches(self) -> None:
        """Every Watch stream ends (OK), after the NOT_SERVING it was already sent."""
        self._ended.set()
