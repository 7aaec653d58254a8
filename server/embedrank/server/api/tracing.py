"""OpenTelemetry traces (--otlp-endpoint): the SDK, the OTLP exporter, and the spans of a request.

Imported only when tracing is on (server/api/context.py), so a server without it never loads the SDK.
The request span is opened by the transport from the caller's W3C context (``traceparent``,
``tracestate``, ``baggage``; the propagators of OTEL_PROPAGATORS); the engine's reports
(server/engine/observe.py) become its children: ``tokenize``, ``queue``, ``inference``, and
``postprocess`` (the engine's post-processing and the response's encoding). Each item of a bidi stream is a
request of its own, its span a child of the stream's (docs/deploy.md says why). A batch run is one
``embedrank.batch`` span of its own trace, linked to every request it served; each request's
``inference`` span links back to its batches. Model loads, self checks and hot swaps are spans too.

The SDK's batch span processor exports from its own thread: a slow or dead collector never blocks a
request. Spans it cannot send (queue full, or the export failed after the exporter's retries) are
dropped and counted in ``embedrank_trace_spans_dropped_total``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from embedrank.server import metrics
from embedrank.server.engine import observe

log = logging.getLogger(__name__)

Attributes = dict[str, str | int | float | bool]
HTTP_PROTOBUF = "http/protobuf"
GRPC = "grpc"


def protocol_for(endpoint: str) -> str:
    """OTLP/gRPC unless OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL says otherwise, or the URL names the
    HTTP receiver: a path ending in /v1/traces, or port 4318 (OTLP/HTTP's registered port)."""
    named = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    if named:
        return HTTP_PROTOBUF if named.startswith("http") else GRPC
    if not endpoint:
        return GRPC
    parts = urlsplit(endpoint)
    return HTTP_PROTOBUF if parts.path.rstrip("/").endswith("/v1/traces") or parts.port == 4318 else GRPC


def make_exporter(endpoint: str) -> SpanExporter:
    """The OTLP exporter for ``endpoint``; empty: the OTEL_EXPORTER_OTLP_* variables decide, as the SDK reads them."""
    if protocol_for(endpoint) == HTTP_PROTOBUF:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        if endpoint and not urlsplit(endpoint).path.rstrip("/"):
            endpoint = endpoint.rstrip("/") + "/v1/traces"
        return HttpExporter(endpoint=endpoint or None)
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

    return GrpcExporter(endpoint=endpoint or None)


class CountingExporter(SpanExporter):
    """The exporter, with what it could not send counted (it has already retried as the SDK does)."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception:  # noqa: BLE001 - an exporter bug must not kill the export thread
            log.exception("trace export failed")
            result = SpanExportResult.FAILURE
        if result is SpanExportResult.SUCCESS:
            metrics.SPANS_EXPORTED.inc(len(spans))
        else:
            metrics.SPANS_DROPPED.labels("export_failed").inc(len(spans))
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class CountingProcessor(BatchSpanProcessor):
    """The SDK's batch span processor; a span that finds its queue full is counted as dropped."""

    def on_end(self, span: ReadableSpan) -> None:
        queue = getattr(self, "_batch_processor", None)
        pending = getattr(queue, "_queue", None)
        if pending is not None and len(pending) >= getattr(queue, "_max_queue_size", 1 << 62):
            metrics.SPANS_DROPPED.labels("queue_full").inc()
        super().on_end(span)


class _Getter(Getter[Mapping[str, str]]):
    """Reads the W3C headers from gRPC metadata or HTTP headers (any mapping of str to str)."""

    def get(self, carrier: Mapping[str, str], key: str) -> list[str] | None:
        value = carrier.get(key)
        return None if value is None else [value]

    def keys(self, carrier: Mapping[str, str]) -> list[str]:
        return list(carrier)


class Tracing:
    """The tracer provider and the spans of requests; the engine's Sink (server/engine/observe.py)."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("embedrank")
        self._getter = _Getter()
        self._offset = time.time_ns() - time.monotonic_ns()  # monotonic ns -> Unix ns

    def wall(self, monotonic_ns: int) -> int:
        return monotonic_ns + self._offset

    # -- requests (the transport) -----------------------------------------------------------------

    def start(self, name: str, carrier: Mapping[str, str], attributes: Attributes) -> Any:
        """The request span, child of the caller's context; None when the sampler drops it."""
        parent = propagate.extract(carrier, getter=self._getter)
        span = self.tracer.start_span(name, context=parent, kind=SpanKind.SERVER, attributes=attributes)
        return span if span.is_recording() else None

    def start_child(self, parent: Any, name: str, attributes: Attributes) -> Any:
        """A span under ``parent`` (a stream's item under the stream's span); None when the sampler drops it."""
        span = self.tracer.start_span(name, context=trace.set_span_in_context(parent, Context()), attributes=attributes)
        return span if span.is_recording() else None

    def finish(self, scope: observe.Scope, end: int, *, code: str, error: bool, message: str,
               attributes: Attributes) -> None:
        """The request's stage spans and its end (at ``end``, monotonic ns); called once its answer is on its way."""
        span = scope.span
        for stages in scope.runs or ():
            self._stages(scope, stages)
        if scope.ran_ns:
            self._child(scope, "postprocess", scope.ran_ns, end, {})
        if scope.model:
            span.set_attributes({
                "embedrank.model": scope.model, "embedrank.model.version": scope.version,
                "embedrank.model.kind": scope.kind, "embedrank.inputs": scope.inputs, "embedrank.tokens": scope.tokens,
            })
        if scope.windows:
            span.set_attribute("embedrank.chunk.windows", scope.windows)
        if scope.items is not None:
            span.set_attribute("embedrank.stream.items", scope.items)
        span.set_attributes(attributes)
        span.set_attribute("embedrank.status", code)
        if code != "OK":
            span.set_attribute("embedrank.error.code", code)
        if error:
            span.set_status(Status(StatusCode.ERROR, message or code))
        span.end(end_time=self.wall(end))

    @staticmethod
    def ids(scope: observe.Scope) -> tuple[str, str]:
        ctx = scope.span.get_span_context()
        return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")

    # -- the engine's reports (observe.Sink) ------------------------------------------------------

    def _child(self, scope: observe.Scope, name: str, start: int, end: int, attributes: Attributes,
               links: Sequence[Link] = ()) -> None:
        parent = trace.set_span_in_context(scope.span, Context())
        span = self.tracer.start_span(name, context=parent, attributes=attributes, links=links,
                                      start_time=self.wall(start))
        span.end(end_time=self.wall(end))

    def _stages(self, scope: observe.Scope, stages: observe.Stages) -> None:
        tokenize: Attributes = {"embedrank.inputs": stages.inputs, "embedrank.tokens": stages.tokens}
        if stages.chunked:
            tokenize["embedrank.chunk.windows"] = stages.sequences
        self._child(scope, "tokenize", stages.start, stages.tokenized, tokenize)
        self._child(scope, "queue", stages.tokenized, stages.queued, {"embedrank.sequences": stages.sequences})
        # The batches that ran inputs of this run (a MaxSim rerank runs twice: query, documents).
        links = [link for link, ran in scope.batch_links or () if stages.tokenized <= ran <= stages.ran]
        self._child(scope, "inference", stages.queued, stages.ran,
                    {"embedrank.sequences": stages.sequences, "embedrank.batches": len(links)}, links)

    def batch(self, scopes: Sequence[observe.Scope], run: observe.BatchRun) -> dict[str, str] | None:
        attributes: Attributes = {
            "embedrank.model": run.model, "embedrank.model.kind": run.kind, "embedrank.batch.size": run.size,
            "embedrank.batch.tokens": run.tokens, "embedrank.batch.padded_tokens": run.padded_tokens,
            "embedrank.batch.padding_ratio": round(1 - run.tokens / run.padded_tokens, 4) if run.padded_tokens else 0.0,
            "embedrank.batch.requests": len(scopes), "embedrank.batch.lone": run.lone,
        }
        links = [Link(s.span.get_span_context(), {"embedrank.request_id": s.request_id}) for s in scopes]
        span = self.tracer.start_span("embedrank.batch", context=Context(), attributes=attributes, links=links,
                                      start_time=self.wall(run.start))
        if run.error is not None:
            span.record_exception(run.error)
            span.set_status(Status(StatusCode.ERROR, type(run.error).__name__))
        span.end(end_time=self.wall(run.end))
        ctx = span.get_span_context()
        if not ctx.trace_flags.sampled:
            return None
        for scope in scopes:  # the request's inference span links back to its batches
            if scope.batch_links is None:
                scope.batch_links = []
            scope.batch_links.append((Link(ctx), run.start))
        return {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}

    @contextlib.contextmanager
    def _span(self, name: str, attributes: Attributes) -> Iterator[None]:
        with self.tracer.start_as_current_span(name, attributes=attributes):
            yield

    def span(self, name: str, attributes: Attributes) -> contextlib.AbstractContextManager[None]:
        return self._span(name, attributes)

    def shutdown(self) -> None:
        """Send what is queued (bounded by the exporter's timeout), then stop the export thread."""
        self.provider.shutdown()


def start_tracing(endpoint: str, service_name: str) -> Tracing:
    """The SDK set up as OTEL_* says (sampler, resource attributes, batch processor, headers), with
    our endpoint and service name. App.start installs it as the engine's sink (observe.install); it is not
    the global tracer provider: nothing else in the process traces."""
    attributes: dict[str, str] = {}
    if service_name != "embedrank" or not os.environ.get("OTEL_SERVICE_NAME"):
        attributes[SERVICE_NAME] = service_name  # an explicit flag wins; the default yields to OTEL_SERVICE_NAME
    provider = TracerProvider(resource=Resource.create(attributes))  # sampler: OTEL_TRACES_SAMPLER[_ARG]
    provider.add_span_processor(CountingProcessor(CountingExporter(make_exporter(endpoint))))
    tracing = Tracing(provider)
    log.info("tracing: OTLP %s to %s, service %s", protocol_for(endpoint), endpoint or "(OTEL_EXPORTER_OTLP_* "
             "endpoint)", provider.resource.attributes.get(SERVICE_NAME))
    return tracing
