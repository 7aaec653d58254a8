"""What making each stream item a request of its own costs, in process, without the model: per item,
``serve_item`` (its scope, the engine's report, its metrics, its span when traced, built after the answer)
against the item's bare path before (a request id, the drain's count, the request counter). Rounds alternate
before / off / all-sampled; prints {setting: [us per item, per round]} and the load average.
    python bench/stream_item_micro.py
"""

from __future__ import annotations

import asyncio
import os
import time

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from embedrank.server import metrics
from embedrank.server.api.context import Observer
from embedrank.server.api.drain import Calls
from embedrank.server.api.status import new_request_id
from embedrank.server.api.stream import serve_item
from embedrank.server.api.tracing import CountingExporter, CountingProcessor, Tracing
from embedrank.server.engine import observe


class Null(SpanExporter):
    def export(self, spans):  # type: ignore[no-untyped-def]
        return SpanExportResult.SUCCESS


async def engine(rid: str) -> str:  # the engine's report, as ServedModel.run makes it
    t0 = time.monotonic_ns()
    observe.request_done(model="m", version=1, kind="embedding", start=t0, tokenized=t0 + 100, queue_ns=100,
                         ran=t0 + 300, inputs=1, sequences=1, tokens=10, chunked=False)
    return rid


async def before(calls: Calls) -> str:
    rid = new_request_id()
    with calls.item():
        answer = await engine(rid)
    metrics.REQUESTS.labels("EncodeStream", "OK").inc()
    return answer


async def run(setting: str, obs: Observer, n: int = 3000) -> float:
    calls = Calls()
    tracing = obs.tracing
    stream = observe.Scope("stream", route="embedrank.v1.Embed/EncodeStream", items=0)
    if tracing is not None:
        stream.span = tracing.start("embedrank.v1.Embed/EncodeStream", {}, {})
    observe.current.set(stream)
    spent = 0.0
    for i in range(n + 300):
        t = time.perf_counter()
        if setting == "before":
            await asyncio.ensure_future(before(calls))
        else:
            await asyncio.ensure_future(serve_item(engine, observer=obs, calls=calls, rpc="EncodeStream", item_id="x"))
        if i >= 300:
            spent += time.perf_counter() - t
        await asyncio.sleep(0)  # the deferred span building (traced) runs
    return spent / n * 1e6


res: dict[str, list[float]] = {}
for _ in range(3):
    for name in ("before", "off", "all"):
        sink = None
        if name == "all":
            provider = TracerProvider(sampler=ALWAYS_ON)
            provider.add_span_processor(CountingProcessor(CountingExporter(Null())))
            sink = Tracing(provider)
        observe.install(sink)
        res.setdefault(name, []).append(asyncio.run(run(name, Observer(sink, access_log=False))))
        observe.install(None)
print({k: [round(v, 1) for v in vs] for k, vs in res.items()}, os.getloadavg())
