"""Under faults (issue #15): SIGTERM drains, refusals come before any work, cancelled work leaves
the queue, gauges return to zero, malformed payloads cannot flood the logs, one definition of empty."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from embedrank.client import AsyncClient, Client, EmbedRankError, _codec
from embedrank.exporter import corpus
from embedrank.v1 import embed_pb2, embed_pb2_grpc
from tests.conftest import ServerProcess


def metric(text: str, name: str, labels: str = "") -> float:
    """One sample of a Prometheus text exposition (0 when absent)."""
    pattern = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else r"(?:\{\})?") + r" ([0-9.e+-]+)"
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


def serve_copy(repo: Path, workdir: Path, model: str, *flags: str) -> ServerProcess:
    only = workdir / f"repo-faults-{model}-{time.monotonic_ns()}"
    shutil.copytree(repo / model, only / model)
    return ServerProcess(only, "--metrics-port", "0", *flags)


async def wait_for(check, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def sentences(n: int, offset: int = 0) -> list[str]:
    pool = corpus.sentences()
    return [pool[(offset + i) % len(pool)] for i in range(n)]


async def _sigterm_with_100_in_flight(proc: ServerProcess, texts_per_request: int) -> tuple[list[object], float, float]:
    """100 Encode calls in flight (all admitted or answered), then SIGTERM; a Health.Watch stays open throughout.
    Returns (results, time of the last answer, time the process exited)."""
    total = 100 * texts_per_request
    async with AsyncClient(proc.target, timeout=120) as client, grpc.aio.insecure_channel(proc.target) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
        answered: list[float] = []

        async def one(i: int) -> object:
            try:
                return await client.encode("minilm", sentences(texts_per_request, i * texts_per_request))
            except EmbedRankError as exc:
                return exc
            finally:
                answered.append(time.monotonic())

        calls = [asyncio.ensure_future(one(i)) for i in range(100)]
        # Every call admitted (or already answered: the first ones may finish before the last arrive).
        await wait_for(lambda: metric(proc.metrics(), "embedrank_inflight_inputs") + texts_per_request * len(answered) >= total)
        proc.proc.send_signal(signal.SIGTERM)
        results = await asyncio.gather(*calls)
        exited = await asyncio.get_running_loop().run_in_executor(None, lambda: (proc.proc.wait(60), time.monotonic())[1])
        watch.cancel()
    return results, max(answered), exited


async def test_sigterm_drains_every_call_that_fits_the_grace(repo: Path, workdir: Path) -> None:
    proc = serve_copy(repo, workdir, "minilm", "--shutdown-grace-s", "60", "--max-inflight-inputs", "2048")
    try:
        results, last_answer, exited = await _sigterm_with_100_in_flight(proc, texts_per_request=4)
    finally:
        proc.stop()
    failed = [r for r in results if isinstance(r, BaseException)]
    assert not failed, failed[:3]
    assert all(r.shape == (4, 384) for r in results)  # type: ignore[union-attr]
    assert proc.proc.returncode == 0
    # The process leaves once the work is done, not after the 60 s grace, even with a Watch open.
    assert exited - last_answer < 1.5, exited - last_answer


async def test_sigterm_answers_what_cannot_finish_unavailable(repo: Path, workdir: Path) -> None:
    proc = serve_copy(repo, workdir, "minilm", "--shutdown-grace-s", "0.2", "--max-inflight-inputs", "4096")
    try:
        results, _, _ = await _sigterm_with_100_in_flight(proc, texts_per_request=24)
    finally:
        proc.stop()
    codes = [r.code for r in results if isinstance(r, EmbedRankError)]
    assert len(codes) + sum(not isinstance(r, BaseException) for r in results) == 100
    assert codes, "a 0.2 s grace cannot fit 2,400 sentences on this machine"
    assert set(codes) == {grpc.StatusCode.UNAVAILABLE}, set(codes)  # retryable; never CANCELLED


async def test_new_calls_during_drain_get_unavailable(repo: Path, workdir: Path) -> None:
    proc = serve_copy(repo, workdir, "minilm", "--shutdown-grace-s", "30", "--max-inflight-inputs", "4096")
    try:
        async with AsyncClient(proc.target, timeout=120) as client:
            busy = asyncio.ensure_future(client.encode("minilm", [" ".join(corpus.paragraphs()[:3])] * 64))
            await wait_for(lambda: metric(proc.metrics(), "embedrank_inflight_inputs") >= 64)
            proc.proc.send_signal(signal.SIGTERM)
            # Served until the drain window ends (tests/test_drain.py); then the listener is closed.
            await wait_for(lambda: "shutdown: listener closed" in proc.output())
            # The server's own answer (a plain channel: no client-side health checking).
            async with grpc.aio.insecure_channel(proc.target) as channel:
                with pytest.raises(grpc.aio.AioRpcError) as raw:
                    await embed_pb2_grpc.EmbedStub(channel).Encode(_codec.encode_request("minilm", ["too late"]))
            assert raw.value.code() == grpc.StatusCode.UNAVAILABLE and "failed to connect" in (raw.value.details() or "")
            # Our client may not even send it: its channel saw health go NOT_SERVING. UNAVAILABLE either way.
            with pytest.raises(EmbedRankError) as info:
                await client.encode("minilm", ["too late"])
            assert info.value.code == grpc.StatusCode.UNAVAILABLE
            assert (await busy).shape == (64, 384)
    finally:
        proc.stop()


async def test_over_cap_refusals_never_reach_the_tokenizer(repo: Path, workdir: Path) -> None:
    proc = serve_copy(repo, workdir, "minilm", "--max-inflight-inputs", "64", "--max-inputs-per-request", "64")
    texts = [" ".join(corpus.paragraphs()[i : i + 2]) for i in range(32)]
    try:
        before = metric(proc.metrics(), "embedrank_tokenized_inputs_total", 'kind="embedding",model="minilm"')
        async with AsyncClient(proc.target, timeout=120) as client:
            results = await asyncio.gather(*(client.encode("minilm", texts) for _ in range(12)), return_exceptions=True)
        ok = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, EmbedRankError) and r.code == grpc.StatusCode.RESOURCE_EXHAUSTED]
        assert ok and refused and len(ok) + len(refused) == 12
        tokenized = metric(proc.metrics(), "embedrank_tokenized_inputs_total", 'kind="embedding",model="minilm"') - before
        assert tokenized == 32 * len(ok)  # not one refused text was tokenized
    finally:
        proc.stop()


async def test_cancelled_streams_leave_nothing_queued_and_run_little(repo: Path, workdir: Path) -> None:
    workers = 2  # batches at once (the CPU default: one per core); each may hold a cancelled stream's inputs
    proc = serve_copy(repo, workdir, "tiny-bert", "--max-batch-size", "8", "--workers", str(workers))
    model, streams, per_request = "tiny-bert", 500, 4
    inputs_before = metric(proc.metrics(), "embedrank_inputs_total", f'kind="embedding",model="{model}"')
    answered = 0
    try:
        async with grpc.aio.insecure_channel(proc.target) as channel:
            stub = embed_pb2_grpc.EmbedStub(channel)

            async def stream(n: int) -> int:
                request = _codec.encode_request(model, sentences(per_request, n))
                call = stub.EncodeStream(
                    iter([embed_pb2.EncodeStreamRequest(id=str(i), request=request) for i in range(20)])
                )
                got = 0
                async for _ in call:
                    got += 1
                    if got == 1 + n % 3:
                        call.cancel()
                        break
                return got

            for start in range(0, streams, 50):  # 50 streams at a time
                answered += sum(await asyncio.gather(*(stream(n) for n in range(start, start + 50))))
            # Deadlines that expire while queued, behind a busy queue.
            async with AsyncClient(proc.target, timeout=0.002) as hasty:
                late = await asyncio.gather(
                    *(hasty.encode(model, sentences(per_request, i)) for i in range(50)), return_exceptions=True
                )
            assert any(isinstance(r, EmbedRankError) and r.code == grpc.StatusCode.DEADLINE_EXCEEDED for r in late)
        deadline = time.monotonic() + 1.0 + 2.0  # within a second (plus scrape slack)
        while True:
            text = proc.metrics()
            queued = metric(text, "embedrank_queued_inputs", f'model="{model}"')
            inflight = metric(text, "embedrank_inflight_inputs")
            if (queued, inflight) == (0, 0) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert (queued, inflight) == (0, 0)
        ran = metric(text, "embedrank_inputs_total", f'kind="embedding",model="{model}"') - inputs_before
        late_answered = sum(not isinstance(r, BaseException) for r in late) * per_request
        # The model ran no more than what was answered plus one running batch (of 8) per worker per stream.
        assert ran <= answered * per_request + late_answered + streams * 8 * workers, (ran, answered * per_request)
    finally:
        proc.stop()


def test_garbage_payloads_get_invalid_argument_and_few_log_lines(repo: Path, workdir: Path) -> None:
    proc = serve_copy(repo, workdir, "tiny-bert")
    try:
        with grpc.insecure_channel(proc.target) as channel:
            raw = channel.unary_unary("/embedrank.v1.Embed/Encode")  # bytes in, bytes out
            start = time.monotonic()
            codes = set()
            for i in range(2000):
                try:
                    raw(bytes([0xFF, i % 256, 0x07, 0x80]) * (1 + i % 5), timeout=10)
                except grpc.RpcError as err:
                    codes.add(err.code())
                    message = err.details()
            elapsed = time.monotonic() - start
            assert codes == {grpc.StatusCode.INVALID_ARGUMENT}
            assert "not a valid EncodeRequest message" in message and "Error parsing" not in message
            stream = channel.stream_stream("/embedrank.v1.Embed/EncodeStream")
            with pytest.raises(grpc.RpcError) as info:
                list(stream(iter([b"\xff\xff\xff"]), timeout=10))
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with Client(proc.target) as client:  # and normal traffic goes on
            assert client.encode("tiny-bert", ["fine"]).shape[0] == 1
    finally:
        proc.stop()
    log = proc.output()
    assert "Traceback" not in log
    warnings = [line for line in log.splitlines() if "not a valid" in line]
    assert 1 <= len(warnings) <= 2 + elapsed * 1.5, len(warnings)  # at most about one a second


@pytest.mark.parametrize("text", ["\x00\x00", "\u200b\u200c\u200d", " \t\n", "\ufeff\x07 \u2060"])
def test_one_definition_of_an_empty_text(target: str, text: str) -> None:
    with Client(target) as client:
        with pytest.raises(EmbedRankError) as info:
            client.encode("tiny-bert", ["fine", text])
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT and info.value.field == "texts[1]"
        with pytest.raises(EmbedRankError) as info:
            client.rerank("tiny-rerank", text, ["a document"])
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT and info.value.field == "query"
        with pytest.raises(EmbedRankError) as info:
            client.rerank("tiny-rerank", "a query", [text])
        assert info.value.field == "documents[0]"


def test_metrics_port_in_use_is_one_line(repo: Path, workdir: Path) -> None:
    import socket
    import subprocess
    import sys

    only = workdir / f"repo-metrics-taken-{time.monotonic_ns()}"
    shutil.copytree(repo / "tiny-bert", only / "tiny-bert")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "embedrank.cli", "--log-level", "ERROR", "serve", "--model-repository",
             str(only), "--host", "127.0.0.1", "--port", "0", "--metrics-port", str(port)],
            capture_output=True, text=True, timeout=120,
        )
    assert result.returncode == 2
    lines = [line for line in result.stderr.strip().splitlines() if "embedrank serve" in line]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"--metrics-port {port}" in lines[0] and "EMBEDRANK_METRICS_PORT" in lines[0]
