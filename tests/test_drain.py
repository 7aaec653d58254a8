"""SIGTERM serves every call sent before it (server/api/drain.py): one client sends 100 Encode
calls and the server is signalled as soon as the first is admitted, not after all of them."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from embedrank.client._codec import encode_request
from embedrank.exporter import corpus
from embedrank.server.api.drain import SETTLE_S, Calls
from embedrank.model.errors import Unavailable
from embedrank.v1 import embed_pb2, embed_pb2_grpc
from tests import checkpoints
from tests.conftest import ServerProcess, export

CALLS = 100
TEXTS = 8


@pytest.fixture(scope="module")
def minilm_repo(workdir: Path) -> Path:
    """all-MiniLM-L6-v2 alone: real work per call (a tiny model would answer before the signal)."""
    repo = workdir / "drain-repo"
    result = export(checkpoints.minilm_path(), repo / "minilm")
    assert result.returncode == 0, f"export minilm failed:\n{result.stderr[-4000:]}"
    return repo


def _server(repo: Path, grace: float) -> ServerProcess:
    return ServerProcess(
        repo, "--metrics-port", "0", "--max-inflight-inputs", str(CALLS * TEXTS + 64), "--max-inputs-per-request", "64",
        "--shutdown-grace-s", str(grace),
    )


@pytest.fixture()
def server_factory(minilm_repo: Path) -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for s in started:
        s.stop()


def _requests() -> list[embed_pb2.EncodeRequest]:
    paragraphs = corpus.paragraphs()
    return [
        encode_request("minilm", [paragraphs[(i * TEXTS + j) % len(paragraphs)] for j in range(TEXTS)])
        for i in range(CALLS)
    ]


def _in_flight(metrics_url: str) -> float:
    text = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
    found = re.search(r"^embedrank_inflight_inputs (\S+)$", text, re.M)
    assert found, text[-2000:]
    return float(found.group(1))


async def _signal_after_first_admitted(server: ServerProcess) -> float:
    """SIGTERM as soon as the server counts inputs in flight; returns how many it counted."""
    port = re.search(r"metrics on http://[\d.]+:(\d+)/metrics", server.output())
    assert port
    url = f"http://127.0.0.1:{port.group(1)}/metrics"

    def watch() -> float:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            seen = _in_flight(url)
            if seen > 0:
                os.kill(server.proc.pid, signal.SIGTERM)
                return seen
        raise AssertionError("no input was ever admitted")

    return await asyncio.to_thread(watch)


async def _send_all(server: ServerProcess) -> tuple[list[object], float, grpc.aio.Channel]:
    """100 calls from one client; SIGTERM once the first is admitted. Returns each call's result
    (a response or the AioRpcError), the inputs in flight at the signal, and the open channel."""
    channel = grpc.aio.insecure_channel(server.target)
    stub = embed_pb2_grpc.EmbedStub(channel)
    await channel.channel_ready()
    watcher = asyncio.ensure_future(_signal_after_first_admitted(server))
    await asyncio.sleep(0.05)  # the watcher polls before the first call can be admitted
    calls = [stub.Encode(request, timeout=120) for request in _requests()]
    seen = await watcher
    results = await asyncio.gather(*calls, return_exceptions=True)
    return list(results), seen, channel


def _codes(results: list[object]) -> dict[str, int]:
    codes: dict[str, int] = {}
    for r in results:
        name = r.code().name if isinstance(r, grpc.aio.AioRpcError) else "OK"
        codes[name] = codes.get(name, 0) + 1
    return codes


async def _wait_for_log(server: ServerProcess, pattern: str, timeout: float = 30) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, server.output())
        if found:
            return found
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {pattern!r} in the server's log:\n{server.output()[-3000:]}")


async def test_sigterm_serves_every_call_sent_before_it(server_factory: list[ServerProcess], minilm_repo: Path) -> None:
    server = _server(minilm_repo, grace=60)
    server_factory.append(server)
    channel = grpc.aio.insecure_channel(server.target)
    stub = embed_pb2_grpc.EmbedStub(channel)
    await channel.channel_ready()
    stream = stub.EncodeStream(timeout=120)
    await stream.write(embed_pb2.EncodeStreamRequest(id="before", request=_requests()[0]))
    assert (await stream.read()).WhichOneof("result") == "response"
    watcher = asyncio.ensure_future(_signal_after_first_admitted(server))
    await asyncio.sleep(0.05)
    calls = [stub.Encode(request, timeout=120) for request in _requests()]
    seen = await watcher
    signalled = time.monotonic()
    # Sent after the signal on the open connection, inside the drain window: served too.
    late = await stub.Encode(_requests()[0], timeout=120)
    assert late.embeddings.rows == TEXTS
    # Once the listener has closed, a new connection is refused: UNAVAILABLE at the client,
    # while the server is still answering the calls it took.
    closed = await _wait_for_log(server, r"shutdown: listener closed after [\d.]+s; answering (\d+) call\S* .*, (\d+) stream")
    assert int(closed.group(1)) > 0, "nothing was left to answer when the listener closed: the test saw nothing"
    assert int(closed.group(2)) == 1
    # An open stream is served as long as there is work (as grpc-go's GracefulStop serves it) ...
    await stream.write(embed_pb2.EncodeStreamRequest(id="after", request=_requests()[1]))
    answer = await stream.read()
    assert (answer.id, answer.WhichOneof("result")) == ("after", "response"), answer
    async with grpc.aio.insecure_channel(server.target) as fresh:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await embed_pb2_grpc.EmbedStub(fresh).Encode(_requests()[0], timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value
    # Refused or reset (a connection the kernel queued as the listener closed): never a call.
    assert "failed to connect" in (refused.value.details() or ""), refused.value.details()
    results = await asyncio.gather(*calls, return_exceptions=True)
    # ... and ends UNAVAILABLE (retry elsewhere) once the work is done, instead of holding the exit.
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await stream.read()
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE and "shutting down" in (ended.value.details() or "")
    await channel.close()
    assert _codes(list(results)) == {"OK": CALLS}, (seen, _codes(list(results)), server.output()[-3000:])
    assert all(r.embeddings.rows == TEXTS for r in results)  # type: ignore[union-attr]
    assert seen < CALLS * TEXTS, f"all {seen:.0f} inputs were admitted before the signal: the test saw nothing"
    assert server.proc.wait(60) == 0
    # The exit came with the work, not after the 60 s grace.
    assert time.monotonic() - signalled < 45, server.output()[-3000:]


async def test_short_grace_answers_the_rest_unavailable_never_cancelled(
    server_factory: list[ServerProcess], minilm_repo: Path,
) -> None:
    server = _server(minilm_repo, grace=0.5)
    server_factory.append(server)
    results, seen, channel = await _send_all(server)
    await channel.close()
    codes = _codes(results)
    assert set(codes) <= {"OK", "UNAVAILABLE"}, (codes, server.output()[-3000:])
    assert codes.get("UNAVAILABLE", 0) > 0, (codes, "the work fitted the grace: make it longer")
    for r in results:
        if isinstance(r, grpc.aio.AioRpcError):
            assert "shutting down" in (r.details() or ""), r.details()
    assert seen < CALLS * TEXTS
    assert server.proc.wait(30) == 0
    # After the exit nothing listens: a new call cannot connect.
    async with grpc.aio.insecure_channel(server.target) as fresh:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await embed_pb2_grpc.EmbedStub(fresh).Encode(_requests()[0], timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "failed to connect" in (refused.value.details() or ""), refused.value.details()


# The drain's bookkeeping on its own (server/api/drain.py), with its real clock.


async def test_window_lasts_the_notice_and_until_calls_stop_arriving() -> None:
    calls = Calls()
    start = time.monotonic()
    assert await calls.wait_settled(not_before=start + 0.2, until=start + 5)
    assert time.monotonic() - start >= 0.2  # the notice, though nothing arrived

    async def arrivals() -> None:  # one call every 50 ms for 0.6 s: never SETTLE_S apart
        for _ in range(12):
            with calls.track():
                pass
            await asyncio.sleep(0.05)

    start = time.monotonic()
    sender = asyncio.ensure_future(arrivals())
    await asyncio.sleep(0)  # the first call has arrived
    assert await calls.wait_settled(not_before=start, until=start + 5)
    waited = time.monotonic() - start
    await sender
    assert 0.6 + SETTLE_S - 0.05 <= waited < 3, waited
    # Calls that keep arriving past the deadline: not settled.
    start = time.monotonic()
    sender = asyncio.ensure_future(arrivals())
    await asyncio.sleep(0)
    assert not await calls.wait_settled(not_before=start, until=start + 0.3)
    await sender


async def test_work_is_calls_and_stream_items_not_open_streams() -> None:
    calls = Calls()
    with calls.track(stream=True):  # an open stream with nothing to answer does not hold the drain
        assert await calls.wait_done(until=time.monotonic() + 1)
        assert not await calls.wait_idle(until=time.monotonic() + 0.2)  # but it is an open call
        with calls.item():
            assert not await calls.wait_done(until=time.monotonic() + 0.2)
        assert await calls.wait_done(until=time.monotonic() + 1)
    with calls.track():
        assert not await calls.wait_done(until=time.monotonic() + 0.2)
    assert await calls.wait_idle(until=time.monotonic() + 1)


def test_calls_are_refused_only_once_draining() -> None:
    calls = Calls()
    stopped: list[bool] = []
    with calls.on_drain(lambda: stopped.append(True)):
        with calls.track():
            calls.start_drain()
    assert stopped == [True]
    with pytest.raises(Unavailable), calls.track():
        pass
    assert (calls.active, calls.working, calls.streams) == (0, 0, 0)
