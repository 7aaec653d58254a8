"""The calls being answered, so that SIGTERM can drain them instead of cancelling them.

grpc.aio's ``server.stop(grace)`` cancels at once every call the transport has received but no
handler has picked up yet, and a cancelled call tells its client nothing about whether the
work was done. So the server drains by itself first: from ``start_drain()`` new calls (and
new items of open streams) are refused with UNAVAILABLE, open streams stop reading, and
``wait_idle`` returns the moment the last call already received has been answered.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator

from embedrank.model.errors import Unavailable

SHUTTING_DOWN = "server shutting down; retry on another replica"


class Calls:
    def __init__(self) -> None:
        self.active = 0
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._on_drain: set[Callable[[], object]] = set()

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        """One call, from its handler's start to its answer; refused once draining."""
        if self.draining:
            raise Unavailable(SHUTTING_DOWN)
        self.active += 1
        self._idle.clear()
        try:
            yield
        finally:
            self.active -= 1
            if not self.active:
                self._idle.set()

    @contextlib.contextmanager
    def on_drain(self, callback: Callable[[], object]) -> Iterator[None]:
        """Call ``callback`` when draining starts (e.g. stop reading a stream), while inside."""
        self._on_drain.add(callback)
        try:
            yield
        finally:
            self._on_drain.discard(callback)

    def start_drain(self) -> None:
        self.draining = True
        for callback in list(self._on_drain):
            callback()

    async def wait_idle(self, timeout: float) -> bool:
        """True when every call was answered within ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True
