"""Merges inputs from concurrent requests into length-homogeneous batches under a token budget.

Each input is a WorkItem with an asyncio.Future. One background task per model forms a
batch, runs it in the model's executor thread and resolves the futures. Fairness: the
anchor of every batch is the head input of the request that has waited longest for a
turn, so one big request cannot starve small ones; the rest of the batch is filled with
queued inputs of the nearest lengths, so padding stays small. Inputs whose caller went
away are dropped, and inputs whose deadline passed fail with DeadlineExceeded without
reaching the runtime.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from embedrank.server import metrics
from embedrank.server.errors import DeadlineExceeded, Unavailable
from embedrank.server.runtime.base import TokenSeq

log = logging.getLogger(__name__)

# Runs one batch (blocking) and returns one result per input, in order.
BatchFn = Callable[[Sequence[TokenSeq]], Sequence[Any]]


@dataclasses.dataclass(eq=False, slots=True)
class WorkItem:
    seq: TokenSeq
    future: asyncio.Future[Any]
    group: int  # the request it belongs to
    deadline: float | None  # time.monotonic() value
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


class Batcher:
    def __init__(self, name: str, run_batch: BatchFn, limits: BatchLimits) -> None:
        self._name = name
        self._run_batch = run_batch
        self._limits = limits
        self._groups: collections.OrderedDict[int, collections.deque[WorkItem]] = collections.OrderedDict()
        self._size = 0
        self._wakeup = asyncio.Event()
        # `workers` batches at once: on a CPU, one single-threaded run per core beats one run
        # spread over the cores for the small batches serving sees.
        self._executor = concurrent.futures.ThreadPoolExecutor(limits.workers, thread_name_prefix=f"run-{name}")
        self._free = asyncio.Semaphore(limits.workers)
        self._running: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.batches_run = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"batcher-{self._name}")

    async def close(self) -> None:
        self._closed = True
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        for queue in self._groups.values():
            for item in queue:
                if not item.future.done():
                    item.future.set_exception(Unavailable("server shutting down"))
        self._groups.clear()
        self._executor.shutdown(wait=True)

    @property
    def queued(self) -> int:
        return self._size

    def submit(self, items: Sequence[WorkItem]) -> None:
        if self._closed:
            raise Unavailable("server shutting down")
        if not items:
            return
        now = time.monotonic()
        for item in items:
            item.enqueued = now
            self._groups.setdefault(item.group, collections.deque()).append(item)
        self._size += len(items)
        self._wakeup.set()

    async def _loop(self) -> None:
        while True:
            await self._free.acquire()  # a worker is free: form the next batch now
            if not self._size:
                self._wakeup.clear()
                await self._wakeup.wait()
            batch = self._next_batch()
            if not batch:
                self._free.release()
                continue
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[WorkItem]) -> None:
        try:
            seqs = [item.seq for item in batch]
            start = time.monotonic()
            for item in batch:
                item.started = start
            try:
                results = await asyncio.get_running_loop().run_in_executor(self._executor, self._run_batch, seqs)
            except Exception as exc:  # a runtime failure fails this batch only
                log.exception("model %s: batch of %d failed", self._name, len(batch))
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                return
            elapsed = int((time.monotonic() - start) * 1e9)
            self.batches_run += 1
            self._observe(batch, elapsed)
            for item, result in zip(batch, results, strict=True):
                item.batch_ns = elapsed
                if not item.future.done():
                    item.future.set_result(result)
        finally:
            self._free.release()

    def _observe(self, batch: list[WorkItem], elapsed_ns: int) -> None:
        real = sum(item.length for item in batch)
        name = self._name
        metrics.BATCH_SIZE.labels(name).observe(len(batch))
        metrics.BATCH_FILL.labels(name).observe(real / (len(batch) * max(item.length for item in batch)))
        metrics.BATCH_SECONDS.labels(name).observe(elapsed_ns / 1e9)
        metrics.INPUTS.labels(name).inc(len(batch))
        metrics.TOKENS.labels(name).inc(real)
        metrics.QUEUED.labels(name).set(self._size)

    def _drop_dead(self, now: float) -> None:
        """Remove inputs whose caller is gone or whose deadline passed."""
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
            self._size -= len(queue) - len(keep)
            if keep:
                self._groups[group] = keep
            else:
                del self._groups[group]

    def _next_batch(self) -> list[WorkItem]:
        self._drop_dead(time.monotonic())
        if not self._groups:
            return []
        anchor_group, anchor_queue = next(iter(self._groups.items()))
        anchor = anchor_queue[0]
        # Round robin: the anchor's request goes to the back for the next anchor choice.
        self._groups.move_to_end(anchor_group)
        candidates = sorted((item for q in self._groups.values() for item in q), key=lambda it: it.length)
        k = candidates.index(anchor)
        lo, hi = k, k + 1  # the batch is candidates[lo:hi], contiguous in length order
        width, real = anchor.length, anchor.length
        budget, max_rows, min_fill = self._limits.max_batch_tokens, self._limits.max_batch_size, self._limits.min_fill
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
        chosen = set(map(id, batch))
        for group in [g for g, q in self._groups.items() if any(id(it) in chosen for it in q)]:
            remaining = collections.deque(it for it in self._groups[group] if id(it) not in chosen)
            if remaining:
                self._groups[group] = remaining
            else:
                del self._groups[group]
        self._size -= len(batch)
        return batch
