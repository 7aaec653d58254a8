"""Health, reflection, admission, deadlines and graceful shutdown of a live server."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from embedrank.client import AsyncClient, Client, EmbedRankError
from embedrank.exporter import corpus
from tests.conftest import ServerProcess


def test_health_serving_per_service(target: str) -> None:
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "embedrank.v1.Embed", "embedrank.v1.Rerank", "embedrank.v1.Models"):
            assert stub.Check(health_pb2.HealthCheckRequest(service=service)).status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_services(target: str) -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name for r in responses for s in r.list_services_response.service}
    assert {"embedrank.v1.Embed", "embedrank.v1.Rerank", "embedrank.v1.Models", "grpc.health.v1.Health"} <= names


async def test_health_answers_fast_under_full_load(target: str) -> None:
    texts = [" ".join(corpus.paragraphs()[i : i + 3]) for i in range(64)]
    async with AsyncClient(target) as client:
        load = [asyncio.ensure_future(client.encode("minilm", texts)) for _ in range(6)]
        await asyncio.sleep(0.3)
        async with grpc.aio.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            start = time.monotonic()
            await stub.Check(health_pb2.HealthCheckRequest(service=""))
            elapsed = time.monotonic() - start
        await asyncio.gather(*load)
    # The event loop never runs inference; a health check waits for no batch.
    assert elapsed < 0.5, elapsed


def test_deadline_shorter_than_queue_gives_deadline_exceeded(target: str) -> None:
    texts = [" ".join(corpus.paragraphs()[i : i + 3]) for i in range(200)]
    with Client(target) as client:
        big = client._embed.Encode.future(  # noqa: SLF001 - a raw future to queue work first
            __import__("embedrank.client._codec", fromlist=["x"]).encode_request("minilm", texts), timeout=60
        )
        time.sleep(0.5)  # tokenized and running: a batch of 32 x 256 tokens takes seconds here
        with pytest.raises(EmbedRankError) as info:
            Client(target, timeout=0.05).encode("minilm", ["late"])
        assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert big.result().embeddings.rows == 200


@pytest.fixture()
def small_server(repo: Path, workdir: Path) -> ServerProcess:
    only = workdir / f"repo-small-{time.monotonic_ns()}"
    shutil.copytree(repo / "minilm", only / "minilm")
    return ServerProcess(only, "--max-inflight-inputs", "64", "--max-inputs-per-request", "64", "--shutdown-grace-s", "20")


async def test_overload_rejects_exactly_the_excess(small_server: ServerProcess) -> None:
    texts = [" ".join(corpus.paragraphs()[i : i + 2]) for i in range(32)]
    try:
        async with AsyncClient(small_server.target) as client:
            results = await asyncio.gather(*(client.encode("minilm", texts) for _ in range(8)), return_exceptions=True)
        ok = [r for r in results if not isinstance(r, BaseException)]
        rejected = [r for r in results if isinstance(r, EmbedRankError)]
        assert len(ok) + len(rejected) == 8
        assert rejected and all(r.code == grpc.StatusCode.RESOURCE_EXHAUSTED for r in rejected)
        assert 2 <= len(ok) <= 6  # 64 inputs in flight = 2 requests at once; later ones fit as earlier finish
        reference = await AsyncClient(small_server.target).encode("minilm", texts)
        for r in ok:
            assert abs(r - reference).max() < 1e-5
    finally:
        small_server.stop()


def test_graceful_shutdown_finishes_in_flight(small_server: ServerProcess) -> None:
    texts = [" ".join(corpus.paragraphs()[i : i + 3]) for i in range(60)]
    with Client(small_server.target) as client:
        from embedrank.client import _codec

        inflight = client._embed.Encode.future(_codec.encode_request("minilm", texts), timeout=60)  # noqa: SLF001
        time.sleep(0.2)
        small_server.proc.send_signal(signal.SIGTERM)
        assert inflight.result().embeddings.rows == 60
    assert small_server.proc.wait(30) == 0


def test_broken_manifest_is_skipped_loudly(repo: Path, workdir: Path) -> None:
    broken = workdir / "repo-broken"
    shutil.copytree(repo / "tiny-bert", broken / "good")
    shutil.copytree(repo / "tiny-bert", broken / "bad-json")
    (broken / "bad-json" / "1" / "manifest.json").write_text("{not json")
    shutil.copytree(repo / "tiny-bert", broken / "no-graph")
    (broken / "no-graph" / "1" / "model.onnx").unlink()
    proc = ServerProcess(broken)
    try:
        with Client(proc.target) as client:
            assert [m.name for m in client.list_models()] == ["good"]
            with pytest.raises(EmbedRankError) as info:
                client.encode("no-graph", ["a"])
            assert info.value.code == grpc.StatusCode.NOT_FOUND
        log = proc.output()
        assert "bad-json/1/manifest.json: not readable JSON" in log
        assert "no-graph/1/model.onnx: missing" in log
    finally:
        proc.stop()


def test_empty_repository_refuses_to_start(workdir: Path) -> None:
    empty = workdir / "repo-empty"
    empty.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "embedrank.cli", "serve", "--model-repository", str(empty), "--port", "0"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "no servable model" in result.stderr and "embedrank export" in result.stderr


def test_bearer_token_required_when_configured(repo: Path, workdir: Path) -> None:
    only = workdir / f"repo-auth-{time.monotonic_ns()}"
    shutil.copytree(repo / "tiny-bert", only / "tiny-bert")
    token_file = workdir / "token"
    token_file.write_text("s3cret\n")
    proc = ServerProcess(only, "--auth-token-file", str(token_file))
    try:
        for token, words in ((None, "needs a bearer token"), ("wrong", "missing or wrong")):
            with Client(proc.target, token=token) as client:
                with pytest.raises(EmbedRankError) as info:
                    client.encode("tiny-bert", ["a"])
                assert info.value.code == grpc.StatusCode.UNAUTHENTICATED and words in info.value.message
        with Client(proc.target, token="s3cret") as client:
            assert client.encode("tiny-bert", ["a"]).shape[0] == 1
            assert [m.name for m in client.list_models()] == ["tiny-bert"]
        with grpc.insecure_channel(proc.target) as channel:  # health stays open for probes
            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            assert status.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        proc.stop()


def test_prometheus_metrics(repo: Path, workdir: Path) -> None:
    import re
    import urllib.request

    only = workdir / f"repo-metrics-{time.monotonic_ns()}"
    shutil.copytree(repo / "tiny-bert", only / "tiny-bert")
    proc = ServerProcess(only, "--metrics-port", "0")
    try:
        with Client(proc.target) as client:
            client.encode("tiny-bert", ["one", "two", "three"])
            with pytest.raises(EmbedRankError):
                client.encode("tiny-bert", [])
        port = re.search(r"metrics on http://[\d.]+:(\d+)/metrics", proc.output()).group(1)  # type: ignore[union-attr]
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        assert 'embedrank_requests_total{code="OK",rpc="Encode"} 1.0' in text
        assert 'embedrank_requests_total{code="INVALID_ARGUMENT",rpc="Encode"} 1.0' in text
        assert re.search(r'embedrank_inputs_total\{kind="embedding",model="tiny-bert"\} (\d+)', text).group(1) not in ("0",)  # type: ignore[union-attr]
        assert "embedrank_batch_size_bucket" in text and "embedrank_inflight_inputs 0.0" in text
    finally:
        proc.stop()


def test_prometheus_metrics_per_kind(kinds_repo: Path, workdir: Path) -> None:
    """Sparse, multi-vector (its own RPC and a MaxSim Rerank) and Tokenize traffic, each visible apart:
    the request counters by RPC, the per-model counters with the model's kind."""
    import re

    def value(text: str, name: str, labels: str) -> float:
        found = re.search(re.escape(f"{name}{{{labels}}}") + r" ([0-9.e+-]+)", text)
        return float(found.group(1)) if found else 0.0

    only = workdir / f"repo-metrics-kinds-{time.monotonic_ns()}"
    for name in ("tiny-sparse", "tiny-colbert"):
        shutil.copytree(kinds_repo / name, only / name)
    proc = ServerProcess(only, "--metrics-port", "0")
    try:
        before = proc.metrics()  # the load-time self check and warm-up ran batches already
        with Client(proc.target) as client:
            client.encode_sparse("tiny-sparse", ["one", "two", "three"])
            client.encode_multi_vector("tiny-colbert", ["one", "two"], input_type="document")
            client.rerank("tiny-colbert", "a query", ["one", "two", "three", "four"])
            client.tokenize("tiny-sparse", ["one"])
            with pytest.raises(EmbedRankError):
                client.encode_multi_vector("tiny-colbert", [])
        text = proc.metrics()
    finally:
        proc.stop()
    assert 'embedrank_requests_total{code="OK",rpc="EncodeSparse"} 1.0' in text
    assert 'embedrank_requests_total{code="OK",rpc="EncodeMultiVector"} 1.0' in text
    assert 'embedrank_requests_total{code="INVALID_ARGUMENT",rpc="EncodeMultiVector"} 1.0' in text
    assert 'embedrank_requests_total{code="OK",rpc="Rerank"} 1.0' in text
    assert 'embedrank_requests_total{code="OK",rpc="Tokenize"} 1.0' in text
    assert 'embedrank_request_duration_seconds_count{rpc="EncodeSparse"} 1.0' in text
    assert 'embedrank_request_duration_seconds_count{rpc="EncodeMultiVector"} 1.0' in text

    def ran(name: str, labels: str) -> float:
        return value(text, name, labels) - value(before, name, labels)

    sparse, colbert = 'kind="sparse",model="tiny-sparse"', 'kind="multi-vector",model="tiny-colbert"'
    assert ran("embedrank_inputs_total", sparse) == 3
    assert ran("embedrank_inputs_total", colbert) == 2 + 1 + 4  # two documents, then a query and four documents
    assert ran("embedrank_tokenized_inputs_total", colbert) == 7
    assert ran("embedrank_tokens_total", colbert) > 7
    assert value(text, "embedrank_batch_duration_seconds_count", colbert) > 0
    kinds = set(re.findall(r'^embedrank_inputs_total\{kind="([^"]+)",model="[^"]+"\}', text, flags=re.M))
    assert kinds == {"sparse", "multi-vector"}  # one series per model: the kind adds none
