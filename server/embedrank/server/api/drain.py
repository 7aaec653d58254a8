"""The calls being answered, so that SIGTERM serves every call sent before it.

How the field drains, and what we copy:

- grpc-go ``GracefulStop`` closes the listeners, sends GOAWAY (twice: first with the highest stream
  id and a ping, so that calls already on the wire are still taken), and lets every RPC already
  started run to its end, open streams included; it has no grace of its own (a timer and ``Stop``).
- Envoy's drain (``--drain-time-s``): health fails first, the listener keeps accepting and serving
  while clients are discouraged, and only at the end of the drain time does it stop.
- Kubernetes takes the pod out of the Service's endpoints at the same time as it runs the preStop
  hook; a ``sleep`` there covers the propagation, SIGTERM follows, and SIGKILL comes
  ``terminationGracePeriodSeconds`` after the preStop began.

grpc.aio cannot close its listener on its own: ``server.stop(grace)`` closes it and sends GOAWAY,
and at that moment grpc core *cancels* (CANCELLED, not retried) every call it has received but not
yet handed to a handler; grpc.aio asks core for one call at a time, so under load many calls sit
there. Refusing every call from SIGTERM on (as before) answered them UNAVAILABLE instead, although
they were sent before the signal. So the drain has three steps (``App.stop``):

1. **Window** (from SIGTERM): health NOT_SERVING, and every call that arrives is served as at any
   other time, open streams included. It lasts at least ``DRAIN_NOTICE_S`` (clients that watch
   health, ours do, move to other replicas within milliseconds) and until no call has arrived for
   ``SETTLE_S``: then core holds no call that no handler has taken, and closing cancels nothing.
2. **Listener closed** (``server.stop``, GOAWAY): new connections are refused (UNAVAILABLE at the
   client, which retries elsewhere); the calls taken, and the items of open streams, are answered
   (as in grpc-go). When none is left, open streams stop reading and end UNAVAILABLE after their
   answered items, and the process exits: as soon as the work is done.
3. **Grace over** (``--shutdown-grace-s`` after SIGTERM) with work left: what cannot finish is
   answered UNAVAILABLE (queued inputs fail, running batches finish), never CANCELLED. If calls kept
   arriving for the whole grace, the window ends here too: from now on calls are refused
   UNAVAILABLE (``track``) until none has arrived for ``SETTLE_S`` (at most ``CLOSE_S``), and only
   then does the listener close.

Only Embed and Rerank calls are counted: a health check, Models or reflection call that core holds
at the very moment the listener closes can still be cancelled, as can a call that a client sends on
an open connection while the GOAWAY is on its way (clients that watch health have stopped by then).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Iterator

from embedrank.model.errors import Unavailable

SHUTTING_DOWN = "server shutting down; retry on another replica"

# The window lasts at least this long after SIGTERM: NOT_SERVING reaches the clients that watch
# health before the listener closes.
DRAIN_NOTICE_S = 0.5
# No call arrived for this long: grpc core holds none that a handler has not taken (grpc.aio takes
# them one at a time, microseconds apart while the event loop is free).
SETTLE_S = 0.1
# Once the grace is over: how long refused calls may keep arriving before the listener closes anyway.
CLOSE_S = 1.0


class Calls:
    """The Embed and Rerank calls in flight: open calls, and the work (unary calls and stream items)."""

    def __init__(self) -> None:
        self.active = 0  # calls open, streams included
        self.working = 0  # unary calls and stream items being answered
        self.streams = 0  # streams open
        self.stopping = False  # SIGTERM came: health says so (calls are still served in the window)
        self.draining = False  # calls refused, streams stop reading
        self._arrived = -math.inf  # time.monotonic() of the last call or stream item that arrived
        self._changed = asyncio.Event()
        self._on_drain: set[Callable[[], object]] = set()

    @contextlib.contextmanager
    def track(self, *, stream: bool = False) -> Iterator[None]:
        """One call, from its handler's start to its answer; refused once draining. A stream's
        work is its items (``item``), not the open stream."""
        self._arrived = time.monotonic()
        self._changed.set()
        if self.draining:
            raise Unavailable(SHUTTING_DOWN)
        work = 0 if stream else 1
        self.active += 1
        self.working += work
        self.streams += 1 - work
        try:
            yield
        finally:
            self.active -= 1
            self.working -= work
            self.streams -= 1 - work
            self._changed.set()

    @contextlib.contextmanager
    def item(self) -> Iterator[None]:
        """One item of an open stream, from its arrival to its answer."""
        self._arrived = time.monotonic()
        self._changed.set()
        self.working += 1
        try:
            yield
        finally:
            self.working -= 1
            self._changed.set()

    @contextlib.contextmanager
    def on_drain(self, callback: Callable[[], object]) -> Iterator[None]:
        """Call ``callback`` when draining starts (e.g. stop reading a stream), while inside."""
        self._on_drain.add(callback)
        try:
            yield
        finally:
            self._on_drain.discard(callback)

    def start_drain(self) -> None:
        """Refuse new calls (UNAVAILABLE); open streams stop reading."""
        self.draining = True
        for callback in list(self._on_drain):
            callback()

    async def wait_settled(self, *, not_before: float, until: float) -> bool:
        """True once, at or after ``not_before``, no call has arrived for ``SETTLE_S``; False at
        ``until`` (both ``time.monotonic()``)."""
        return await self._wait(lambda: True, not_before=not_before, until=until)

    async def wait_done(self, *, until: float) -> bool:
        """True once no unary call or stream item is being answered (and none arrived for
        ``SETTLE_S``); False at ``until``. Open streams with nothing to answer do not count."""
        return await self._wait(lambda: self.working == 0, not_before=-math.inf, until=until)

    async def wait_idle(self, *, until: float) -> bool:
        """True once every call, streams included, has been answered (and none arrived for
        ``SETTLE_S``); False at ``until``."""
        return await self._wait(lambda: self.active == 0, not_before=-math.inf, until=until)

    async def _wait(self, ready: Callable[[], bool], *, not_before: float, until: float) -> bool:
        while True:
            now = time.monotonic()
            settled_at = max(not_before, self._arrived + SETTLE_S)
            if ready() and now >= settled_at:
                return True
            if now >= until:
                return False
            wake = min(until, settled_at) if ready() else until
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), max(wake - now, 0.0))
