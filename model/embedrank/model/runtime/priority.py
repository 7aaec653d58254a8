"""Scheduling priority of the threads that run batches.

Compute threads run a notch below the event loop (``--runtime-nice``): on a loaded CPU the loop
then gets a core the moment it has work — a health check, an over-cap refusal, a new request to
read and tokenize — instead of waiting out a compute thread's time slice. Refusals under load measured faster at 5 and 19 than at 0, throughput the same (docs/runtime-notes.md). 5, not 19: any other busy process at nice 0 on the box would take the cores from lower
ones. Linux only: there ``setpriority`` on a thread id changes that one thread, and threads inherit
their creator's nice value, so a runtime built on a lowered thread starts its own pools (ONNX
Runtime's intra-op threads, OpenVINO's streams) lowered too. Elsewhere it would lower the whole
process, so it does nothing.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

SUPPORTED = sys.platform.startswith("linux")


def lower_this_thread(nice: int) -> None:
    """Raise the calling thread's nice value by ``nice`` (capped at 19); no-op where unsupported."""
    if not nice or not SUPPORTED:
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError as exc:  # e.g. a seccomp profile that forbids it: run at the loop's priority
        log.warning("could not lower the priority of a runtime thread (%s); it runs at the event loop's", exc)


def on_lowered_thread(nice: int, build: Callable[[], T]) -> T:
    """``build()`` on a new thread lowered by ``nice``: the threads it starts inherit that priority."""
    if not nice or not SUPPORTED:
        return build()
    with concurrent.futures.ThreadPoolExecutor(
        1, thread_name_prefix="runtime-build", initializer=lower_this_thread, initargs=(nice,)
    ) as pool:
        return pool.submit(build).result()
