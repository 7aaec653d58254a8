"""What tracing adds to one request, in process, without the model: the transport's and engine's reporting
(open the scope and request span, the engine's report, close) on the answer's path, and the total with the
deferred span building (stage spans, the batch span) that runs after the answer is on its way. The exporter
is a null one (the batch processor's thread still runs). Rounds alternate off / sample0 / all; prints
{setting: [(answer path us, total us) per round]} and the load average.
    python bench/otel_micro.py
"""

from __future__ import annotations

import asyncio, os, time
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON
from embedrank.server.api.tracing import Tracing, CountingProcessor, CountingExporter
from embedrank.server.api.context import Observer
from embedrank.server.engine import observe

class Null(SpanExporter):
    def export(self, spans):  # type: ignore[no-untyped-def]
        return SpanExportResult.SUCCESS

ATTRS = {"rpc.system": "grpc", "rpc.service": "embedrank.v1.Embed", "rpc.method": "Encode"}

async def run(obs: Observer, n: int = 3000) -> tuple[float, float]:
    crit = total = 0.0
    for i in range(n + 300):
        t = time.perf_counter()
        t0 = time.monotonic_ns()
        scope = obs.open("embedrank.v1.Embed/Encode", {}, "rid", dict(ATTRS))
        observe.current.set(scope)
        s = observe.traced()
        observe.request_done(model="m", version=1, kind="embedding", start=t0, tokenized=t0+100, queue_ns=100,
                             ran=t0+300, inputs=1, sequences=1, tokens=10, chunked=False)
        observe.exemplar()
        obs.close(scope, t0, route="x", code="OK", status="OK", error=False, attributes={"rpc.grpc.status_code": 0})
        c = time.perf_counter()
        if observe.sink is not None and s is not None:  # the batcher's deferred report
            observe.sink.batch([s], observe.BatchRun("m", "embedding", t0, t0 + 200, 1, 10, 10, True))
        await asyncio.sleep(0)  # the deferred finish runs
        if i >= 300:
            crit += c - t
            total += time.perf_counter() - t
        observe.current.set(None)
    return crit / n * 1e6, total / n * 1e6

res: dict[str, list[tuple[float, float]]] = {}
for rnd in range(3):
    for name, sampler in (("off", None), ("sample0", ALWAYS_OFF), ("all", ALWAYS_ON)):
        if sampler is None:
            obs, sink = Observer(None, access_log=False), None
        else:
            p = TracerProvider(sampler=sampler); p.add_span_processor(CountingProcessor(CountingExporter(Null())))
            sink = Tracing(p); obs = Observer(sink, access_log=False)
        observe.install(sink)
        res.setdefault(name, []).append(asyncio.run(run(obs)))
        observe.install(None)
print({k: [(round(a, 1), round(b, 1)) for a, b in v] for k, v in res.items()}, os.getloadavg())
