"""What one model version has in flight, so that a replaced version is closed only when its last
request is answered (engine/reload.py)."""

from __future__ import annotations

import asyncio

from embedrank.server.engine.served import Admission


class VersionAdmission(Admission):
    """The engine's shared admission bound, also counting one model version's inputs in flight.

    ServedModel.run() acquires before its first await and releases as it returns, so a request
    that got this version from the engine is counted from its first step to its answer."""

    def __init__(self, shared: Admission) -> None:
        super().__init__(shared.max_inputs)
        self._shared = shared
        self._idle = asyncio.Event()
        self._idle.set()

    def acquire(self, n: int) -> None:
        self._shared.acquire(n)  # refuses over the shared bound; counts nothing then
        self.in_flight += n
        self._idle.clear()

    def release(self, n: int) -> None:
        self._shared.release(n)
        self.in_flight -= n
        if not self.in_flight:
            self._idle.set()

    async def wait_idle(self) -> None:
        await self._idle.wait()
