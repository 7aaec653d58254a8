"""Merges inputs from concurrent requests into length-homogeneous batches under a token budget.

Each input is a WorkItem with an asyncio.Future. The batcher is event-driven, with no
background loop: a batch is formed the moment there is work and a free worker — on submit
and when a batch finishes — so a lone request on an idle server runs at once, with no
batching window. Fairness: the anchor of every batch is the oldest queued input of the
caller (a unary request, or one stream's requests together) that has waited longest for a
turn, so neither a big request nor a stream's own tail can starve anyone's head; the rest of
the batch is filled with queued inputs of the nearest lengths, so padding stays small.
Inputs leave the queue as soon as their call ends (``remove``) or their deadline passes
(DeadlineExceeded), never reaching the runtime.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from embedrank.server import metrics
from embedrank.server.engine import observe
from embedrank.model.errors import DeadlineExceeded, Unavailable
from embedrank.model.runtime.base import TokenSeq
from embedrank.model.runtime.priority import lower_this_thread

log = logging.getLogger(__name__)

# Runs one batch (blocking) and returns one result per input, in order. The flag says the batch
# is a lone one, run on the loop thread while nothing else is queued or running: the runtime may
# then use threads that spin (they would fight the loop for the cores under load).
BatchFn = Callable[[Sequence[TokenSeq], bool], Sequence[Any]]


@dataclasses.dataclass(eq=False, slots=True)
class WorkItem:
    seq: TokenSeq
    future: asyncio.Future[Any]
    group: int  # the caller: one unary request, or every request of one stream
    deadline: float | None  # time.monotonic() value
    request: int = 0  # the request within its caller (a stream's requests differ)
    scope: observe.Scope | None = None  # its request's, when traced: the batch span links to it
    enqueued: float = 0.0
    started: float = 0.0  # when its batch started
    batch_ns: int = 0  # duration of its batch

    @property
    def length(self) -> int:
        return self.seq.length


@dataclasses.dataclass(frozen=True)
class BatchLimits:
    max_batch_tokens: int
    max_batch_size: int
    # Stop growing a batch when real tokens / padded tokens would drop below this: on CPU a
    # bigger batch is not faster per token, so padding is pure waste.
    min_fill: float = 0.0
    # Batches run at once (each in its own executor thread).
    workers: int = 1
    # A lone input of at most this many tokens, queued while nothing else is queued or running
    # (a lone query), runs on the event-loop thread itself: no hand-off to an executor thread
    # and back (the runtime releases the GIL). One input only: the loop answers nothing else
    # while it runs (refusals, health checks, new requests), so a bigger lone request is handed
    # off like any batch (measured: a 32-text request run inline held a burst's 429s behind it).
    # 0 = always hand off.
    inline_tokens: int = 0
    # The executor threads run this much lower than the event loop (runtime/priority.py).
    nice: int = 0


class Batcher:
    def __init__(
        self,
        name: str,
        run_batch: BatchFn,
        limits: BatchLimits,
        *,
        kind: str = "",
        on_idle: Callable[[], None] | None = None,
    ) -> None:
        self._name = name
        self._kind = kind  # the model's kind, a label of the per-model metrics
        self._run_batch = run_batch
        # Run in a worker thread when the batcher goes idle after big batches (memory trim).
        self._on_idle = on_idle
        self._ran_big = False
        self._next_idle = 0.0
        self._limits = limits
        self._groups: collections.OrderedDict[int, collections.deque[WorkItem]] = collections.OrderedDict()
        self._size = 0
        # `workers` batches at once: on a CPU, one single-threaded run per core beats one run
        # spread over the cores for the small batches serving sees.
        self._executor = concurrent.futures.ThreadPoolExecutor(
            limits.workers, thread_name_prefix=f"run-{name}", initializer=lower_this_thread, initargs=(limits.nice,)
        )
        self._idle = limits.workers
        self._running: set[asyncio.Task[None]] = set()
        self._started = False
        self._closed = False
        self._kick_soon = False
        self.batches_run = 0
        self.inputs_run = 0

    def start(self) -> None:
        self._started = True
        self._kick()

    async def close(self) -> None:
        """Fail what is queued with Unavailable, let running batches finish, stop the threads."""
        self._closed = True
        for queue in self._groups.values():
            for item in queue:
                if not item.future.done():
                    item.future.set_exception(Unavailable("server shutting down; retry on another replica"))
        self._groups.clear()
        self._set_size(0)
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        self._executor.shutdown(wait=True)

    @property
    def queued(self) -> int:
        return self._size

    @property
    def busy(self) -> bool:
        return self._size > 0 or self._idle < self._limits.workers

    def submit(self, items: Sequence[WorkItem]) -> None:
        if self._closed:
            raise Unavailable("server shutting down; retry on another replica")
        if not items:
            return
        now = time.monotonic()
        for item in items:
            item.enqueued = now
            self._groups.setdefault(item.group, collections.deque()).append(item)
        self._set_size(self._size + len(items))
        if not self._kick_soon:
            # One loop turn later, not now: the other requests that arrived together (a burst,
            # already read by gRPC) are queued by then, so they batch together instead of each
            # running alone, inline, one after another. A truly lone request waits one turn.
            self._kick_soon = True
            asyncio.get_running_loop().call_soon(self._deferred_kick)

    def remove(self, items: Iterable[WorkItem]) -> None:
        """Take these inputs out of the queue now (their caller left); running ones finish."""
        gone: dict[int, set[int]] = {}
        for item in items:
            gone.setdefault(item.group, set()).add(id(item))
        removed = 0
        for group, ids in gone.items():
            queue = self._groups.get(group)
            if not queue:
                continue
            keep = collections.deque(item for item in queue if id(item) not in ids)
            removed += len(queue) - len(keep)
            if keep:
                self._groups[group] = keep
            else:
                del self._groups[group]
        if removed:
            self._set_size(self._size - removed)

    def expire(self, items: Iterable[WorkItem]) -> None:
        """Their deadline passed: fail the still-queued ones with DeadlineExceeded and drop them."""
        queued = [item for item in items if not item.future.done() and not item.started]
        self.remove(queued)
        for item in queued:
            item.future.set_exception(DeadlineExceeded("deadline passed while queued; the model did not run"))

    def _set_size(self, size: int) -> None:
        self._size = size
        metrics.QUEUED.labels(self._name).set(size)

    def _deferred_kick(self) -> None:
        self._kick_soon = False
        self._kick()

    def _kick(self) -> None:
        """Start batches while there is queued work and a free worker."""
        if not self._started or self._closed:
            return
        while self._idle and self._size:
            alone = self._idle == self._limits.workers  # nothing else running
            rows = self._limits.max_batch_size
            if self._idle > 1 and not (alone and self._fits_inline()):
                # Spread what is queued over the idle workers (one single-threaded batch per
                # core): a lone request of 32 texts then runs on every core, not on one.
                rows = min(rows, -(-self._size // self._idle))
            batch = self._next_batch(rows)
            if not batch:
                return
            self._idle -= 1
            width = max(item.length for item in batch)
            if alone and not self._size and len(batch) == 1 and width <= self._limits.inline_tokens:
                self._run_inline(batch)
                continue
            self._ran_big = True
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    def _fits_inline(self) -> bool:
        """What is queued is one input that fits the inline lone-query path."""
        if self._size != 1:
            return False
        return next(iter(self._groups.values()))[0].length <= self._limits.inline_tokens

    def _run_inline(self, batch: list[WorkItem]) -> None:
        start = time.monotonic()
        for item in batch:
            item.started = start
        try:
            results = self._run_batch([item.seq for item in batch], True)
        except Exception as exc:  # a runtime failure fails this batch only
            self._fail(batch, exc, start, lone=True)
        else:
            self._finish(batch, results, start, lone=True)
        finally:
            self._idle += 1

    async def _run(self, batch: list[WorkItem]) -> None:
        try:
            seqs = [item.seq for item in batch]
            start = time.monotonic()
            for item in batch:
                item.started = start
            try:
                results = await asyncio.get_running_loop().run_in_executor(self._executor, self._run_batch, seqs, False)
            except Exception as exc:  # a runtime failure fails this batch only
                self._fail(batch, exc, start, lone=False)
                return
            self._finish(batch, results, start, lone=False)
        finally:
            self._idle += 1
            self._kick()
            now = time.monotonic()
            if self._ran_big and self._on_idle and not self.busy and not self._closed and now >= self._next_idle:
                self._ran_big, self._next_idle = False, now + 1.0  # at most once a second
                self._executor.submit(self._on_idle)

    def _fail(self, batch: list[WorkItem], exc: Exception, start: float, *, lone: bool) -> None:
        log.exception("model %s: batch of %d failed", self._name, len(batch), exc_info=exc)
        if observe.sink is not None:  # after the callers are woken (their wake-ups are queued first)
            end = time.monotonic_ns()
            asyncio.get_running_loop().call_soon(lambda: self._report(batch, start, end, lone=lone, error=exc))
        for item in batch:
            if not item.future.done():
                item.future.set_exception(exc)

    def _finish(self, batch: list[WorkItem], results: Sequence[Any], start: float, *, lone: bool) -> None:
        elapsed = int((time.monotonic() - start) * 1e9)
        self.batches_run += 1
        self.inputs_run += len(batch)
        for item, result in zip(batch, results, strict=True):
            item.batch_ns = elapsed
            if not item.future.done():
                item.future.set_result(result)
        if observe.sink is None:
            self._observe(batch, elapsed, None)
        else:  # the span is built after the callers are woken (their wake-ups are queued first): off their path
            end = time.monotonic_ns()
            asyncio.get_running_loop().call_soon(
                lambda: self._observe(batch, elapsed, self._report(batch, start, end, lone=lone)))

    def _observe(self, batch: list[WorkItem], elapsed_ns: int, exemplar: dict[str, str] | None) -> None:
        real = sum(item.length for item in batch)
        name, kind = self._name, self._kind
        metrics.BATCH_SIZE.labels(name).observe(len(batch))
        metrics.BATCH_FILL.labels(name).observe(real / (len(batch) * max(item.length for item in batch)))
        metrics.BATCH_SECONDS.labels(name, kind).observe(elapsed_ns / 1e9, exemplar)
        metrics.INPUTS.labels(name, kind).inc(len(batch))
        metrics.TOKENS.labels(name, kind).inc(real)

    def _report(
        self, batch: list[WorkItem], start: float, end: int, *, lone: bool, error: BaseException | None = None
    ) -> dict[str, str] | None:
        """Tracing on: one span for the batch, linked to every traced request it served; its exemplar."""
        sink, scopes = observe.sink, {id(it.scope): it.scope for it in batch if it.scope is not None}
        if sink is None or not scopes:
            return None
        width = max(item.length for item in batch)
        return sink.batch(list(scopes.values()), observe.BatchRun(
            model=self._name, kind=self._kind, start=int(start * 1e9), end=end, size=len(batch),
            tokens=sum(item.length for item in batch), padded_tokens=width * len(batch), lone=lone, error=error,
        ))

    def _drop_dead(self, now: float) -> None:
        """Backstop: remove inputs whose caller is gone or whose deadline passed."""
        dropped = 0
        for group in list(self._groups):
            queue = self._groups[group]
            keep: collections.deque[WorkItem] = collections.deque()
            for item in queue:
                if item.future.done():
                    continue
                if item.deadline is not None and item.deadline <= now:
                    item.future.set_exception(DeadlineExceeded("deadline passed while queued; the model did not run"))
                    continue
                keep.append(item)
            dropped += len(queue) - len(keep)
            if keep:
                self._groups[group] = keep
            else:
                del self._groups[group]
        if dropped:
            self._set_size(self._size - dropped)

    def _next_batch(self, max_rows: int) -> list[WorkItem]:
        self._drop_dead(time.monotonic())
        if not self._groups:
            return []
        anchor_group, anchor_queue = next(iter(self._groups.items()))
        anchor = anchor_queue[0]
        # Round robin: the anchor's caller goes to the back for the next anchor choice.
        self._groups.move_to_end(anchor_group)
        if self._size == 1 or max_rows == 1:
            batch = [anchor]
        else:
            batch = self._fill(anchor, max_rows)
        chosen = set(map(id, batch))
        for group in [g for g, q in self._groups.items() if any(id(it) in chosen for it in q)]:
            remaining = collections.deque(it for it in self._groups[group] if id(it) not in chosen)
            if remaining:
                self._groups[group] = remaining
            else:
                del self._groups[group]
        self._set_size(self._size - len(batch))
        return batch

    def _fill(self, anchor: WorkItem, max_rows: int) -> list[WorkItem]:
        """The anchor plus queued inputs of the nearest lengths, under the budget and padding floor.

        First from every caller's oldest request (finishing requests first keeps latency low and
        wastes little when a stream is cancelled), then, with room left, later requests' inputs
        that fit the batch's width."""
        heads: list[WorkItem] = []
        rest: list[WorkItem] = []
        for queue in self._groups.values():
            head = queue[0].request
            for item in queue:
                (heads if item.request == head else rest).append(item)
        candidates = sorted(heads, key=lambda it: it.length)
        k = candidates.index(anchor)
        lo, hi = k, k + 1  # the batch is candidates[lo:hi], contiguous in length order
        width, real = anchor.length, anchor.length
        budget, min_fill = self._limits.max_batch_tokens, self._limits.min_fill
        while hi - lo < max_rows:
            left = candidates[lo - 1] if lo > 0 else None
            right = candidates[hi] if hi < len(candidates) else None
            # Prefer the neighbour closest in length to the anchor; fall back to the other.
            options = [c for c in (left, right) if c is not None]
            options.sort(key=lambda c: abs(c.length - anchor.length))
            for pick in options:
                rows, new_width = hi - lo + 1, max(width, pick.length)
                if rows * new_width <= budget and (real + pick.length) >= min_fill * rows * new_width:
                    break
            else:
                break
            if pick is left:
                lo -= 1
            else:
                hi += 1
            width, real = new_width, real + pick.length
        batch = candidates[lo:hi]
        if len(batch) < max_rows and rest:
            # Later requests' inputs no longer than the width: no wider padding, longest first.
            for item in sorted((it for it in rest if it.length <= width), key=lambda it: -it.length):
                rows = len(batch) + 1
                if rows > max_rows or rows * width > budget or real + item.length < min_fill * rows * width:
                    break
                batch.append(item)
                real += item.length
        return batch
