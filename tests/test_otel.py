"""OpenTelemetry traces, request ids, JSON logs and exemplars, against a real OTLP receiver.

The receiver is a gRPC server implementing the collector's own ``TraceService/Export`` (the generated
code of ``opentelemetry-proto``) on 127.0.0.1:0; the server under test exports to it with the SDK's
OTLP exporter, and the tests read the spans back.
"""

from __future__ import annotations

import concurrent.futures
import json
import re
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

from embedrank.tei.v1 import tei_pb2, tei_pb2_grpc
from embedrank.v1 import common_pb2, embed_pb2, embed_pb2_grpc
from tests.conftest import EMBEDRANK, ServerProcess

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
# Fast export for the tests: 50 ms between batches; a dead collector fails an export within a second.
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "50", "OTEL_EXPORTER_OTLP_TIMEOUT": "1"}


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace receiver that keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[trace_pb2.Span] = []
        self.resources: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.server = grpc.server(concurrent.futures.ThreadPoolExecutor(2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def Export(self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any) -> Any:  # noqa: N802
        with self._lock:
            for rs in request.resource_spans:
                self.resources.append(attrs(rs.resource.attributes))
                for ss in rs.scope_spans:
                    self.spans.extend(ss.spans)
        return trace_service_pb2.ExportTraceServiceResponse()

    def wait_for(self, predicate: Any, timeout: float = 20.0) -> list[trace_pb2.Span]:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = [s for s in self.spans if predicate(s)]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


def attrs(kvs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in kvs:
        v = kv.value
        out[kv.key] = getattr(v, v.WhichOneof("value")) if v.WhichOneof("value") else None
    return out


def hexid(raw: bytes) -> str:
    return raw.hex()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.stop(0)


@pytest.fixture(scope="module")
def traced(tiny_repo: Path, receiver: Receiver) -> Iterator[ServerProcess]:
    # One batch at a time and no inline path: concurrent requests queue behind a running batch and
    # share the next one.
    with ServerProcess(
        tiny_repo, "--otlp-endpoint", f"http://127.0.0.1:{receiver.port}", "--otlp-service-name", "embedrank-test",
        "--log-format", "json", "--access-log", "--http-port", "0", "--metrics-port", "0",
        "--workers", "1", "--small-batch-tokens", "0", env=FAST_EXPORT,
    ) as proc:
        yield proc


def _stub(proc: ServerProcess) -> embed_pb2_grpc.EmbedStub:
    return embed_pb2_grpc.EmbedStub(grpc.insecure_channel(proc.target))


def _traceparent(trace_id: str = CALLER_TRACE, span_id: str = CALLER_SPAN) -> str:
    return f"00-{trace_id}-{span_id}-01"


def _of_trace(receiver: Receiver, trace_id: str, name: str) -> list[trace_pb2.Span]:
    return receiver.wait_for(lambda s: hexid(s.trace_id) == trace_id and s.name == name)


def test_encode_span_joins_the_callers_trace_with_its_stages(traced: ServerProcess, receiver: Receiver) -> None:
    response, call = _stub(traced).Encode.with_call(
        embed_pb2.EncodeRequest(model="tiny-bert", texts=["a first sentence", "and a second one"]),
        metadata=[("traceparent", _traceparent()), ("tracestate", "vendor=1"), ("baggage", "tenant=acme"),
                  ("x-request-id", "caller-id-1")],
    )
    assert response.embeddings.rows == 2
    assert ("x-request-id", "caller-id-1") in call.trailing_metadata()

    [server] = _of_trace(receiver, CALLER_TRACE, "embedrank.v1.Embed/Encode")
    assert hexid(server.parent_span_id) == CALLER_SPAN
    assert server.kind == trace_pb2.Span.SPAN_KIND_SERVER
    a = attrs(server.attributes)
    assert a["rpc.system"] == "grpc" and a["rpc.service"] == "embedrank.v1.Embed" and a["rpc.method"] == "Encode"
    assert a["embedrank.model"] == "tiny-bert" and a["embedrank.model.version"] == 1
    assert a["embedrank.model.kind"] == "embedding" and a["embedrank.inputs"] == 2 and a["embedrank.tokens"] > 4
    assert a["embedrank.request_id"] == "caller-id-1" and a["rpc.grpc.status_code"] == 0
    assert server.trace_state == "vendor=1"

    stages = {}
    for name in ("tokenize", "queue", "inference", "postprocess"):
        [stage] = _of_trace(receiver, CALLER_TRACE, name)
        assert stage.parent_span_id == server.span_id, name
        assert server.start_time_unix_nano <= stage.start_time_unix_nano <= stage.end_time_unix_nano
        assert stage.end_time_unix_nano <= server.end_time_unix_nano, name
        stages[name] = stage
    assert attrs(stages["tokenize"].attributes)["embedrank.tokens"] == a["embedrank.tokens"]
    # The batch that ran it: its own trace, linked to this request; the inference span links back.
    batches = receiver.wait_for(lambda s: s.name == "embedrank.batch" and any(l.span_id == server.span_id for l in s.links))
    assert batches  # one, or two when the lengths differ too much to pad together (--min-batch-fill)
    assert sum(attrs(b.attributes)["embedrank.batch.size"] for b in batches) == 2
    for batch in batches:
        b = attrs(batch.attributes)
        assert b["embedrank.model"] == "tiny-bert" and b["embedrank.batch.tokens"] <= b["embedrank.batch.padded_tokens"]
    assert {l.span_id for l in stages["inference"].links} == {b.span_id for b in batches}
    assert attrs(stages["inference"].attributes)["embedrank.batches"] == len(batches)
    assert receiver.resources[0]["service.name"] == "embedrank-test"


def test_a_batch_span_links_every_request_it_served(traced: ServerProcess, receiver: Receiver) -> None:
    stub = _stub(traced)
    traces = [f"{i:032x}" for i in range(0xA0, 0xA0 + 12)]
    text = "a sentence long enough to keep the one worker busy for a moment " * 6
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        futures = [pool.submit(stub.Encode, embed_pb2.EncodeRequest(model="tiny-bert", texts=[text] * 4),
                               metadata=[("traceparent", _traceparent(t, "00f067aa0ba902b7"))]) for t in traces]
        assert all(f.result().embeddings.rows == 4 for f in futures)
    servers = {t: _of_trace(receiver, t, "embedrank.v1.Embed/Encode")[0].span_id for t in traces}
    shared = receiver.wait_for(lambda s: s.name == "embedrank.batch"
                               and len({l.trace_id.hex() for l in s.links} & set(traces)) >= 2)
    assert shared, "no batch served two of the concurrent requests"
    for batch in shared:
        for link in batch.links:
            assert link.span_id == servers[link.trace_id.hex()]
        assert attrs(batch.attributes)["embedrank.batch.requests"] == len(batch.links)


def test_an_error_span_has_the_status_and_our_code(traced: ServerProcess, receiver: Receiver) -> None:
    trace_id = "1" * 32
    with pytest.raises(grpc.RpcError) as err:
        _stub(traced).Encode(embed_pb2.EncodeRequest(model="no-such-model", texts=["x"]),
                             metadata=[("traceparent", _traceparent(trace_id))])
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert any(k == "x-request-id" and v for k, v in err.value.trailing_metadata())
    [span] = _of_trace(receiver, trace_id, "embedrank.v1.Embed/Encode")
    assert span.status.code == trace_pb2.Status.STATUS_CODE_ERROR and "no-such-model" in span.status.message
    a = attrs(span.attributes)
    assert a["embedrank.error.code"] == "NOT_FOUND" and a["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]


def test_chunked_input_shows_its_windows(traced: ServerProcess, receiver: Receiver) -> None:
    trace_id = "2" * 32
    long_text = " ".join(f"word{i}" for i in range(200))
    _stub(traced).Encode(
        embed_pb2.EncodeRequest(model="tiny-bert", texts=[long_text], long_input=common_pb2.LONG_INPUT_CHUNK),
        metadata=[("traceparent", _traceparent(trace_id))],
    )
    [span] = _of_trace(receiver, trace_id, "embedrank.v1.Embed/Encode")
    windows = attrs(span.attributes)["embedrank.chunk.windows"]
    assert windows > 1
    [tokenize] = _of_trace(receiver, trace_id, "tokenize")
    assert attrs(tokenize.attributes)["embedrank.chunk.windows"] == windows


def test_http_request_span_and_request_id(traced: ServerProcess, receiver: Receiver) -> None:
    trace_id = "3" * 32
    port = re.search(r"HTTP listening on http://[\d.]+:(\d+)", traced.output())
    assert port
    request = urllib.request.Request(
        f"http://127.0.0.1:{port.group(1)}/v1/embeddings", data=json.dumps({"input": ["hi"], "model": "tiny-bert"}).encode(),
        headers={"Content-Type": "application/json", "traceparent": _traceparent(trace_id), "X-Request-Id": "http-1"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.headers["X-Request-Id"] == "http-1"
    [span] = _of_trace(receiver, trace_id, "POST /v1/embeddings")
    assert hexid(span.parent_span_id) == CALLER_SPAN
    a = attrs(span.attributes)
    assert a["http.request.method"] == "POST" and a["http.route"] == "/v1/embeddings"
    assert a["http.response.status_code"] == 200 and a["embedrank.model"] == "tiny-bert"
    assert _of_trace(receiver, trace_id, "inference")


def test_bad_request_id_is_refused_naming_it(traced: ServerProcess) -> None:
    with pytest.raises(grpc.RpcError) as err:
        _stub(traced).Encode(embed_pb2.EncodeRequest(model="tiny-bert", texts=["x"]), metadata=[("x-request-id", "r" * 200)])
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "x-request-id" in err.value.details()


def test_model_load_and_self_check_are_spans(traced: ServerProcess, receiver: Receiver) -> None:
    [load] = receiver.wait_for(lambda s: s.name == "embedrank.model.load")
    assert attrs(load.attributes)["embedrank.model"] == "tiny-bert"
    [check] = receiver.wait_for(lambda s: s.name == "embedrank.model.self_check")
    assert check.parent_span_id == load.span_id and check.trace_id == load.trace_id


def test_latency_histogram_carries_trace_exemplars(traced: ServerProcess) -> None:
    trace_id = "4" * 32
    _stub(traced).Encode(embed_pb2.EncodeRequest(model="tiny-bert", texts=["x"]), metadata=[("traceparent", _traceparent(trace_id))])
    port = re.search(r"metrics on http://[\d.]+:(\d+)/metrics", traced.output())
    assert port
    request = urllib.request.Request(f"http://127.0.0.1:{port.group(1)}/metrics",
                                     headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    text = urllib.request.urlopen(request, timeout=10).read().decode()
    exemplars = re.findall(r'embedrank_request_duration_seconds_bucket\{[^}]*rpc="Encode"[^}]*\} \d+(?:\.\d+)? # \{([^}]*)\}', text)
    assert exemplars and all("trace_id=" in e for e in exemplars)


def test_json_logs_every_line_parses_and_requests_carry_their_ids(traced: ServerProcess, receiver: Receiver) -> None:
    trace_id = "5" * 32
    _stub(traced).Encode(embed_pb2.EncodeRequest(model="tiny-bert", texts=["x"]),
                         metadata=[("traceparent", _traceparent(trace_id)), ("x-request-id", "json-log-1")])
    [server] = _of_trace(receiver, trace_id, "embedrank.v1.Embed/Encode")
    deadline = time.monotonic() + 10
    while "json-log-1" not in traced.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [json.loads(line) for line in traced.output().splitlines()]  # every line is JSON
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    [access] = [line for line in lines if line.get("request_id") == "json-log-1"]
    assert access["logger"] == "embedrank.access" and access["route"] == "embedrank.v1.Embed/Encode"
    assert access["status"] == "OK" and access["model"] == "tiny-bert" and access["inputs"] == 1
    assert access["trace_id"] == trace_id and access["span_id"] == server.span_id.hex()


def _access_lines(proc: ServerProcess, predicate: Any, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        lines = [json.loads(line) for line in proc.output().splitlines()]
        found = [line for line in lines if line.get("logger") == "embedrank.access" and predicate(line)]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _stream_item_count(proc: ServerProcess) -> float:
    found = re.search(r'embedrank_request_duration_seconds_count\{rpc="EncodeStream"\} (\S+)', proc.metrics())
    return float(found.group(1)) if found else 0.0


STAGES = ("tokenize", "queue", "inference", "postprocess")


def test_each_stream_item_is_a_request_of_its_own(traced: ServerProcess, receiver: Receiver) -> None:
    trace_id = "6" * 32
    observed = _stream_item_count(traced)
    items = [embed_pb2.EncodeStreamRequest(id="a", request=embed_pb2.EncodeRequest(model="tiny-bert", texts=["one"])),
             embed_pb2.EncodeStreamRequest(id="b", request=embed_pb2.EncodeRequest(model="no-such-model", texts=["x"])),
             embed_pb2.EncodeStreamRequest(id="c", request=embed_pb2.EncodeRequest(model="tiny-bert", texts=["two"]))]
    answers = list(_stub(traced).EncodeStream(iter(items), timeout=30, metadata=[
        ("traceparent", _traceparent(trace_id)), ("x-request-id", "stream-1")]))
    assert [a.id for a in answers] == ["a", "b", "c"]
    assert answers[1].error.code == grpc.StatusCode.NOT_FOUND.value[0] and answers[0].response.embeddings.rows == 1

    # The stream's span: the caller's child, with rpc.* and its item count; the stages are not under it.
    [stream] = _of_trace(receiver, trace_id, "embedrank.v1.Embed/EncodeStream")
    assert hexid(stream.parent_span_id) == CALLER_SPAN and stream.kind == trace_pb2.Span.SPAN_KIND_SERVER
    s = attrs(stream.attributes)
    assert s["rpc.method"] == "EncodeStream" and s["rpc.grpc.status_code"] == 0 and s["embedrank.status"] == "OK"
    assert s["embedrank.request_id"] == "stream-1" and s["embedrank.stream.items"] == 3 and s["embedrank.inputs"] == 2
    assert stream.status.code != trace_pb2.Status.STATUS_CODE_ERROR  # an item's error does not end the stream

    # An item's span: the stream's child, with its own request id and the attributes a unary call's span has.
    spans = _of_trace(receiver, trace_id, "embedrank.v1.Embed/EncodeStream item")
    by_id = {attrs(span.attributes)["embedrank.stream.item_id"]: span for span in spans}
    assert sorted(by_id) == ["a", "b", "c"] and len(spans) == 3
    assert {span.parent_span_id for span in spans} == {stream.span_id}
    request_ids = {key: attrs(span.attributes)["embedrank.request_id"] for key, span in by_id.items()}
    assert len(set(request_ids.values()) | {"stream-1"}) == 4
    assert [attrs(by_id[k].attributes)["embedrank.stream.item"] for k in "abc"] == [1, 2, 3]
    bad = attrs(by_id["b"].attributes)
    assert by_id["b"].status.code == trace_pb2.Status.STATUS_CODE_ERROR and "no-such-model" in by_id["b"].status.message
    assert bad["embedrank.status"] == "NOT_FOUND" and bad["embedrank.error.code"] == "NOT_FOUND"
    assert "embedrank.model" not in bad
    stages = receiver.wait_for(lambda sp: hexid(sp.trace_id) == trace_id and sp.name in STAGES)
    for key in "ac":
        good = attrs(by_id[key].attributes)
        assert by_id[key].status.code != trace_pb2.Status.STATUS_CODE_ERROR
        assert good["embedrank.status"] == "OK" and "embedrank.error.code" not in good
        assert good["embedrank.model"] == "tiny-bert" and good["embedrank.model.kind"] == "embedding"
        assert good["embedrank.inputs"] == 1 and good["embedrank.tokens"] > 0
        under = sorted(sp.name for sp in receiver.wait_for(
            lambda sp, key=key: sp.parent_span_id == by_id[key].span_id and sp.name in STAGES))
        assert under == sorted(STAGES), key
    assert not [sp for sp in stages if sp.parent_span_id in (stream.span_id, by_id["b"].span_id)]

    # An access-log line per item (with its stream's request id), and the stream's own with the item count.
    lines = _access_lines(traced, lambda line: line.get("stream_request_id") == "stream-1", 3)
    assert sorted((line["request_id"], line["status"]) for line in lines) == sorted(
        [(request_ids["a"], "OK"), (request_ids["b"], "NOT_FOUND"), (request_ids["c"], "OK")])
    assert all(line["route"] == "embedrank.v1.Embed/EncodeStream" and line["trace_id"] == trace_id for line in lines)
    assert {line["span_id"] for line in lines} == {span.span_id.hex() for span in spans}
    [whole] = _access_lines(traced, lambda line: line.get("request_id") == "stream-1", 1)
    assert whole["items"] == 3 and whole["inputs"] == 2 and whole["span_id"] == stream.span_id.hex()
    # The two good items are observed in the latency histogram like unary calls.
    assert _stream_item_count(traced) == observed + 2


def test_a_tei_stream_item_that_fails_ends_the_stream_with_its_span_in_error(
    traced: ServerProcess, receiver: Receiver,
) -> None:
    trace_id = "7" * 32
    stub = tei_pb2_grpc.EmbedStub(grpc.insecure_channel(traced.target))
    messages = [tei_pb2.EmbedRequest(inputs="fine"), tei_pb2.EmbedRequest(inputs="")]
    with pytest.raises(grpc.RpcError) as err:
        list(stub.EmbedStream(iter(messages), timeout=30, metadata=[
            ("traceparent", _traceparent(trace_id)), ("embedrank-model", "tiny-bert")]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [stream] = _of_trace(receiver, trace_id, "tei.v1.Embed/EmbedStream")
    assert stream.status.code == trace_pb2.Status.STATUS_CODE_ERROR
    assert attrs(stream.attributes)["embedrank.stream.items"] == 2
    spans = {attrs(sp.attributes)["embedrank.stream.item"]: sp for sp in _of_trace(
        receiver, trace_id, "tei.v1.Embed/EmbedStream item")}
    assert sorted(spans) == [1, 2] and {sp.parent_span_id for sp in spans.values()} == {stream.span_id}
    assert attrs(spans[1].attributes)["embedrank.status"] == "OK"
    assert attrs(spans[2].attributes)["embedrank.error.code"] == "INVALID_ARGUMENT"
    assert spans[2].status.code == trace_pb2.Status.STATUS_CODE_ERROR


def test_dead_collector_never_fails_a_request_and_drops_are_counted(tiny_repo: Path, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    (tmp_path / "token").write_text("s3cret")
    proc = ServerProcess(tiny_repo, "--otlp-endpoint", f"http://127.0.0.1:{dead}", "--metrics-port", "0",
                         "--auth-token-file", str(tmp_path / "token"), env=FAST_EXPORT)
    try:
        stub = _stub(proc)
        token = [("authorization", "Bearer s3cret")]
        start = time.monotonic()
        for _ in range(20):
            out = stub.Encode(embed_pb2.EncodeRequest(model="tiny-bert", texts=["x"]), timeout=10, metadata=token)
            assert out.embeddings.rows == 1
        assert time.monotonic() - start < 10
        # A refused token is answered as before, on a stream too (the context wraps the refusal).
        with pytest.raises(grpc.RpcError) as err:
            list(stub.EncodeStream(iter([embed_pb2.EncodeStreamRequest(id="1")]), timeout=10))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        deadline = time.monotonic() + 30
        dropped = 0.0
        while time.monotonic() < deadline and dropped == 0:
            found = re.search(r'embedrank_trace_spans_dropped_total\{reason="export_failed"\} (\S+)', proc.metrics())
            dropped = float(found.group(1)) if found else 0.0
            time.sleep(0.2)
        assert dropped > 0
    finally:
        proc.stop()


CLIENT = textwrap.dedent("""
    import sys
    from opentelemetry import trace
    from opentelemetry.instrumentation.grpc import GrpcInstrumentorClient
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    GrpcInstrumentorClient().instrument()  # before the client makes its channel

    from embedrank.client import Client

    with trace.get_tracer("app").start_as_current_span("search"):
        with Client(sys.argv[1]) as client:
            client.encode("tiny-bert", ["hello"])
    [span] = [s for s in exporter.get_finished_spans() if s.name.endswith("/Encode")]
    print(format(span.context.trace_id, "032x"), format(span.context.span_id, "016x"))
""")


def test_python_client_with_the_standard_grpc_instrumentation_joins_its_trace(
    traced: ServerProcess, receiver: Receiver,
) -> None:
    out = subprocess.run([sys.executable, "-c", CLIENT, traced.target], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    trace_id, span_id = out.stdout.split()
    [server] = _of_trace(receiver, trace_id, "embedrank.v1.Embed/Encode")
    assert server.parent_span_id.hex() == span_id


def test_no_sdk_is_imported_when_tracing_is_off() -> None:
    code = ("import sys; from embedrank.server import app, config; from embedrank.server.http import app as h; "
            "app.build_server(config.parse(['--model-repository', '.', '--port', '0', '--http-port', '0', "
            "'--access-log'])); print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_bad_endpoint_is_refused_at_start() -> None:
    out = subprocess.run([*EMBEDRANK, "serve", "--model-repository", ".", "--otlp-endpoint", "collector:4317"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--otlp-endpoint 'collector:4317' is not a collector URL" in out.stderr


LOG_SCRIPT = textwrap.dedent("""
    import logging, sys
    from embedrank.cli import logs
    from embedrank.server.engine import observe
    logs.configure("INFO", sys.argv[1])
    logging.getLogger("embedrank.x").info("outside")
    observe.current.set(observe.Scope("abc123"))
    logging.getLogger("embedrank.x").info("inside %d", 1)
    try:
        1 / 0
    except ZeroDivisionError:
        logging.getLogger("embedrank.x").exception("failed")
""")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_log_lines_inside_a_request_carry_its_id(fmt: str) -> None:
    out = subprocess.run([sys.executable, "-c", LOG_SCRIPT, fmt], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    if fmt == "text":
        assert "INFO embedrank.x: outside\n" in out.stderr
        assert "INFO embedrank.x: inside 1 [request abc123]" in out.stderr
        return
    lines = [json.loads(line) for line in out.stderr.splitlines()]
    assert [line["message"] for line in lines] == ["outside", "inside 1", "failed"]
    assert "request_id" not in lines[0] and lines[1]["request_id"] == "abc123" and lines[1]["level"] == "INFO"
    assert "ZeroDivisionError" in lines[2]["exception"]
