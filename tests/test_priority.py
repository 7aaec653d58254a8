"""--runtime-nice: the threads that run batches are scheduled below the event loop (Linux)."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from embedrank.client import Client
from embedrank.exporter import corpus
from embedrank.model.runtime.settings import Device
from embedrank.server.engine.batcher import Batcher, BatchLimits, WorkItem
from embedrank.model.manifest import Manifest
from embedrank.model.runtime.base import TokenSeq
from embedrank.model.runtime.select import open_runtime
from embedrank.model.runtime.settings import RuntimeSettings

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="per-thread nice is Linux's")


def stat(tid: int, pid: int | None = None) -> list[str]:
    """The fields of /proc/PID/task/TID/stat after the command name (field 3 onwards)."""
    with open(f"/proc/{pid or os.getpid()}/task/{tid}/stat", encoding="ascii") as fh:
        return fh.read().rsplit(")", 1)[1].split()


def nice_of(tid: int, pid: int | None = None) -> int:
    return int(stat(tid, pid)[16])  # field 19: nice


def cpu_ticks(pid: int, tid: int) -> int:
    fields = stat(tid, pid)
    return int(fields[11]) + int(fields[12])  # utime + stime


async def test_batches_run_on_threads_below_the_loop() -> None:
    seen: list[int] = []

    def run(batch: Sequence[TokenSeq], lone: bool) -> list[int]:
        seen.append(nice_of(threading.get_native_id()))
        return [0] * len(batch)

    loop = asyncio.get_running_loop()
    b = Batcher("t", run, BatchLimits(max_batch_tokens=64, max_batch_size=2, workers=2, nice=3))
    items = [WorkItem(TokenSeq(np.ones(4, dtype=np.int64), None), loop.create_future(), g, None) for g in range(6)]
    b.submit(items)
    b.start()
    await asyncio.gather(*(it.future for it in items))
    await b.close()
    base = nice_of(threading.get_native_id())
    assert seen and set(seen) == {min(19, base + 3)}, (base, seen)


def test_threads_a_runtime_starts_inherit_the_lower_priority(repo: Path) -> None:
    version = repo / "minilm" / "1"
    manifest = Manifest.load(version)
    before = set(map(int, os.listdir("/proc/self/task")))
    runtime = open_runtime(version / manifest.graph.file, manifest.graph, pad_token_id=manifest.tokenizer.pad_token_id,
                           settings=RuntimeSettings(device=Device.CPU, threads=3, nice=4))
    started = set(map(int, os.listdir("/proc/self/task"))) - before
    base = nice_of(threading.get_native_id())
    assert started, "ONNX Runtime started no intra-op threads for 3 threads"
    assert {nice_of(tid) for tid in started} == {min(19, base + 4)}
    assert nice_of(threading.get_native_id()) == base  # the caller is not lowered
    del runtime


def test_a_served_model_computes_below_the_event_loop(server, target: str) -> None:  # type: ignore[no-untyped-def]
    pid = server.proc.pid
    with Client(target) as client:
        for _ in range(4):
            client.encode("minilm", corpus.sentences(64))
    tasks = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    base = nice_of(pid, pid)  # the main thread runs the event loop
    busiest = max((t for t in tasks if t != pid), key=lambda t: cpu_ticks(pid, t))
    assert nice_of(busiest, pid) == min(19, base + 5)  # --runtime-nice's default
    assert base == os.getpriority(os.PRIO_PROCESS, 0)  # the loop runs at the process's own priority
