"""The batcher against a fake batch function with known outputs (no model)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest

from embedrank.server.engine.batcher import Batcher, BatchLimits, WorkItem
from embedrank.model.errors import DeadlineExceeded
from embedrank.model.runtime.base import TokenSeq


class FakeRuntime:
    """Returns each sequence's token sum; records every batch; can be slowed down."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[list[int]] = []  # lengths per batch
        self.seen: list[int] = []  # first token of every sequence run
        self.delay = delay
        self.lock = threading.Lock()

    def __call__(self, batch: Sequence[TokenSeq], lone: bool = False) -> list[int]:
        time.sleep(self.delay)
        with self.lock:
            self.batches.append([s.length for s in batch])
            self.seen.extend(int(s.ids[0]) for s in batch)
        return [int(s.ids.sum()) for s in batch]


def seq(length: int, tag: int = 1) -> TokenSeq:
    ids = np.full(length, 1, dtype=np.int64)
    ids[0] = tag
    return TokenSeq(ids, None)


async def submit(
    b: Batcher, seqs: list[TokenSeq], group: int, deadline: float | None = None, request: int = 0
) -> list[WorkItem]:
    loop = asyncio.get_running_loop()
    items = [WorkItem(s, loop.create_future(), group, deadline, request) for s in seqs]
    b.submit(items)
    return items


async def test_results_match_inputs_and_budget_holds() -> None:
    fake = FakeRuntime()
    b = Batcher("t", fake, BatchLimits(max_batch_tokens=64, max_batch_size=8))
    lengths = [3, 17, 5, 30, 2, 9, 16, 1, 40, 8] * 5
    items = await submit(b, [seq(n, tag=i + 2) for i, n in enumerate(lengths)], group=1)
    b.start()
    results = await asyncio.gather(*(it.future for it in items))
    await b.close()
    assert results == [int(it.seq.ids.sum()) for it in items]
    for batch in fake.batches:
        assert len(batch) <= 8
        assert len(batch) == 1 or max(batch) * len(batch) <= 64


async def test_sorted_batches_keep_padding_small() -> None:
    fake = FakeRuntime()
    b = Batcher("t", fake, BatchLimits(max_batch_tokens=10_000, max_batch_size=4))
    lengths = [1, 100, 2, 99, 3, 98, 4, 97]
    items = await submit(b, [seq(n) for n in lengths], group=1)
    b.start()
    await asyncio.gather(*(it.future for it in items))
    await b.close()
    assert sorted(map(sorted, fake.batches)) == [[1, 2, 3, 4], [97, 98, 99, 100]]


async def test_big_request_does_not_starve_small_ones() -> None:
    fake = FakeRuntime()
    b = Batcher("t", fake, BatchLimits(max_batch_tokens=64, max_batch_size=2))
    big = await submit(b, [seq(32, tag=5) for _ in range(40)], group=1)  # 20 batches of 2
    small = await submit(b, [seq(4, tag=7)], group=2)  # arrives after all of them
    b.start()
    await asyncio.gather(*(it.future for it in big + small))
    await b.close()
    # Round robin over requests: the small one runs in the second batch, not the 21st.
    assert fake.seen.index(7) == 2, fake.batches[:3]


async def test_cancelled_and_expired_inputs_never_reach_the_runtime() -> None:
    fake = FakeRuntime(delay=0.05)
    b = Batcher("t", fake, BatchLimits(max_batch_tokens=16, max_batch_size=1))
    b.start()
    first = await submit(b, [seq(4, tag=2)], group=1)
    await asyncio.sleep(0.01)  # the first batch is running
    cancelled = await submit(b, [seq(4, tag=3)], group=2)
    expired = await submit(b, [seq(4, tag=4)], group=3, deadline=time.monotonic() + 0.01)
    live = await submit(b, [seq(4, tag=5)], group=4)
    cancelled[0].future.cancel()
    await first[0].future
    with pytest.raises(DeadlineExceeded):
        await expired[0].future
    await live[0].future
    await b.close()
    assert fake.seen == [2, 5]


async def test_runtime_failure_fails_that_batch_only() -> None:
    calls = {"n": 0}

    def flaky(batch: Sequence[TokenSeq], lone: bool = False) -> list[int]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom")
        return [s.length for s in batch]

    b = Batcher("t", flaky, BatchLimits(max_batch_tokens=8, max_batch_size=1))
    bad = await submit(b, [seq(4)], group=1)
    good = await submit(b, [seq(5)], group=2)
    b.start()
    with pytest.raises(RuntimeError):
        await bad[0].future
    assert await good[0].future == 5
    await b.close()


async def test_min_fill_keeps_short_and_long_apart() -> None:
    fake = FakeRuntime()
    b = Batcher("t", fake, BatchLimits(max_batch_tokens=100_000, max_batch_size=64, min_fill=0.8))
    items = await submit(b, [seq(n) for n in [10, 40, 11, 41, 12, 42, 13, 43]], group=1)
    b.start()
    await asyncio.gather(*(it.future for it in items))
    await b.close()
    assert sorted(map(sorted, fake.batches)) == [[10, 11, 12, 13], [40, 41, 42, 43]]


async def test_workers_run_batches_at_once() -> None:
    active = {"now": 0, "most": 0}
    lock = threading.Lock()

    def slow(batch: Sequence[TokenSeq], lone: bool = False) -> list[int]:
        with lock:
            active["now"] += 1
            active["most"] = max(active["most"], active["now"])
        time.sleep(0.05)
        with lock:
            active["now"] -= 1
        return [s.length for s in batch]

    b = Batcher("t", slow, BatchLimits(max_batch_tokens=8, max_batch_size=1, workers=2))
    items = await submit(b, [seq(4) for _ in range(6)], group=1)
    b.start()
    assert await asyncio.gather(*(it.future for it in items)) == [4] * 6
    await b.close()
    assert active["most"] == 2


async def test_a_streams_head_is_not_starved_by_its_own_tail() -> None:
    """A stream's requests queue as one caller: its oldest input anchors its turns, and the
    other callers' turns come in between — not 16 requests' worth of turns for the stream."""
    fake = FakeRuntime()
    b = Batcher("t", fake, BatchLimits(max_batch_tokens=1000, max_batch_size=1))
    stream = []
    for request in range(16):  # one stream (caller 1), 16 requests of 2 inputs, tags 100+
        stream += await submit(
            b, [seq(4, tag=100 + 2 * request), seq(4, tag=101 + 2 * request)], group=1, request=request
        )
    others = [await submit(b, [seq(4, tag=10 + c)], group=2 + c) for c in range(8)]  # 8 unary callers
    b.start()
    await asyncio.gather(*(it.future for it in stream + [o[0] for o in others]))
    await b.close()
    # Round robin over callers: stream, caller, caller, ... — the stream's inputs run in its order.
    stream_order = [t for t in fake.seen if t >= 100]
    assert stream_order == sorted(stream_order)
    assert fake.seen[:4] == [100, 10, 11, 12]
    # The stream's first request is done after its second turn (position 9 = after one round).
    assert fake.seen.index(101) == 9


async def test_removed_inputs_leave_the_queue_at_once() -> None:
    fake = FakeRuntime(delay=0.05)
    b = Batcher("t", fake, BatchLimits(max_batch_tokens=16, max_batch_size=1))
    b.start()
    first = await submit(b, [seq(4, tag=2)], group=1)
    await asyncio.sleep(0)  # the first starts running
    queued = await submit(b, [seq(4, tag=3), seq(4, tag=4)], group=2)
    assert b.queued == 2
    b.remove(queued)
    assert b.queued == 0
    expiring = await submit(b, [seq(4, tag=5)], group=3)
    b.expire(expiring)
    with pytest.raises(DeadlineExceeded):
        await expiring[0].future
    assert b.queued == 0
    await first[0].future
    await b.close()
    assert fake.seen == [2]


async def test_a_lone_small_batch_runs_inline_at_once() -> None:
    ran_on: list[str] = []

    def record(batch: Sequence[TokenSeq], lone: bool = False) -> list[int]:
        ran_on.append(threading.current_thread().name if lone else "handed off")
        return [s.length for s in batch]

    b = Batcher("t", record, BatchLimits(max_batch_tokens=64, max_batch_size=8, inline_tokens=16))
    b.start()
    small = await submit(b, [seq(4)], group=1)
    await asyncio.sleep(0)
    assert small[0].future.done()  # answered one loop turn later: no batching window, no thread hop
    big = await submit(b, [seq(32)], group=2)
    assert await big[0].future == 32
    await b.close()
    assert ran_on == [threading.current_thread().name, "handed off"]


async def test_batches_fill_from_oldest_requests_first() -> None:
    """With room to spare, a batch takes every caller's oldest request before anyone's later ones."""
    fake = FakeRuntime()
    b = Batcher("t", fake, BatchLimits(max_batch_tokens=10_000, max_batch_size=4))
    for request in range(3):  # caller 1: three requests of 2 inputs (tags 10+)
        await submit(b, [seq(5, tag=10 + 2 * request), seq(5, tag=11 + 2 * request)], group=1, request=request)
    last = await submit(b, [seq(6, tag=50), seq(6, tag=51)], group=2, request=9)  # caller 2: one request
    b.start()
    await last[1].future
    await b.close()
    assert sorted(fake.seen[:4]) == [10, 11, 50, 51]  # both heads, though 12..15 are closer in length


async def test_a_lone_request_is_spread_over_the_idle_workers() -> None:
    """One request of 32 same-length texts on an idle 2-worker batcher runs as two batches of 16
    (one single-threaded batch per core); so does a request of 4 short texts, though it would fit the
    inline budget: only a lone single input runs inline on the loop (the loop answers nothing else
    while it runs: a burst's refusals would wait behind it)."""
    runtime = FakeRuntime(delay=0.02)
    b = Batcher("t", runtime, BatchLimits(max_batch_tokens=4096, max_batch_size=64, workers=2, inline_tokens=64))
    b.start()
    items = await submit(b, [seq(8, tag=i + 2) for i in range(32)], group=1)
    assert await asyncio.gather(*(it.future for it in items)) == [8 + i + 1 for i in range(32)]
    assert sorted(map(len, runtime.batches)) == [16, 16]
    runtime.batches.clear()
    small = await submit(b, [seq(8) for _ in range(4)], group=2)  # 32 tokens <= 64, but 4 inputs
    await asyncio.sleep(0)
    assert not any(it.future.done() for it in small)  # handed off, not run on the loop
    await asyncio.gather(*(it.future for it in small))
    assert sorted(map(len, runtime.batches)) == [2, 2]
    runtime.batches.clear()
    lone = await submit(b, [seq(8)], group=3)  # one input within the budget: inline, answered at once
    await asyncio.sleep(0)
    assert lone[0].future.done()
    assert runtime.batches == [[8]]
    await b.close()


async def test_a_burst_of_small_requests_is_batched_not_run_one_by_one_inline() -> None:
    """Requests that arrive in the same loop turn are queued before any runs: they batch together."""
    runtime = FakeRuntime()
    b = Batcher("t", runtime, BatchLimits(max_batch_tokens=4096, max_batch_size=64, workers=1, inline_tokens=64))
    b.start()
    requests = [await submit(b, [seq(8), seq(8)], group=g) for g in range(10)]
    assert await asyncio.gather(*(it.future for items in requests for it in items)) == [8] * 20
    assert runtime.batches == [[8] * 20]
    await b.close()
