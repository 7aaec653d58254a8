"""Prometheus metrics (prefix embedrank_), served on --metrics-port when set.

Per request: the RPC (each kind has its own: Encode, EncodeSparse, EncodeMultiVector, Classify, Rerank,
Tokenize, ...) and the status code. Per model: its name and its kind (embedding, rerank, sparse,
multi-vector, classification), so what a kind costs shows even where two kinds share an RPC (Rerank
on a cross-encoder or by MaxSim on a multi-vector model). A model has one kind, so the kind label adds
no series; no label takes a caller's value (texts, request ids), so the series stay bounded by the
RPCs, the status codes and the repository's models."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from embedrank.server.engine import observe

REQUESTS = Counter("embedrank_requests_total", "Finished requests by RPC and gRPC status code.", ["rpc", "code"])
REQUEST_SECONDS = Histogram(
    "embedrank_request_duration_seconds", "Request wall time, arrival to response.", ["rpc"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TOKENIZED = Counter("embedrank_tokenized_inputs_total", "Texts or pairs admitted and tokenized.", ["model", "kind"])
INPUTS = Counter("embedrank_inputs_total", "Texts or pairs run through a model.", ["model", "kind"])
TOKENS = Counter("embedrank_tokens_total", "Tokens run through a model, without padding.", ["model", "kind"])
BATCH_SIZE = Histogram("embedrank_batch_size", "Inputs per batch.", ["model"], buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
BATCH_FILL = Histogram(
    "embedrank_batch_padding_ratio", "Real tokens / padded tokens of each batch (1 = no padding).", ["model"],
    buckets=(0.25, 0.5, 0.75, 0.9, 0.95, 1.0),
)
BATCH_SECONDS = Histogram(
    "embedrank_batch_duration_seconds", "Runtime time per batch.", ["model", "kind"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
QUEUED = Gauge("embedrank_queued_inputs", "Inputs waiting for a batch.", ["model"])
IN_FLIGHT = Gauge("embedrank_inflight_inputs", "Inputs admitted and not yet answered, all models.")
# --otlp-endpoint (server/api/tracing.py): spans the batch processor sent, and those it dropped: its queue
# was full (a slow or dead collector) or the export failed after the exporter's retries.
SPANS_EXPORTED = Counter("embedrank_trace_spans_exported_total", "Spans sent to the OTLP collector.")
SPANS_DROPPED = Counter(
    "embedrank_trace_spans_dropped_total", "Spans not sent to the OTLP collector, by reason (queue_full, "
    "export_failed).", ["reason"],
)
for _reason in ("queue_full", "export_failed"):
    SPANS_DROPPED.labels(_reason)


def observe_request(rpc: str, seconds: float) -> None:
    """A finished request's wall time; a traced request's trace id rides along as the bucket's exemplar
    (shown to scrapers that ask for OpenMetrics)."""
    REQUEST_SECONDS.labels(rpc).observe(seconds, observe.exemplar())


def request_finished(rpc: str, code: str, seconds: float) -> None:
    """A finished request (a unary call, or one item of a stream): counted by its status code; its wall time
    observed when it succeeded."""
    REQUESTS.labels(rpc, code).inc()
    if code == "OK":
        observe_request(rpc, seconds)
