"""Replicas on loopback: three server processes, one client balancing over them under load.

Each replica takes its share; one replica SIGTERMed (it drains: NOT_SERVING, then its listener closes) and another
SIGKILLed (calls on it die with the connection) mid-load, and no call fails, since every one of
them can be retried on the replica left; throughput comes back. The replicas also close every
connection after about 3 s (--max-connection-age-s), which costs no call either.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import time
from pathlib import Path

import pytest

from embedrank.client import AsyncClient, EmbedRankError
from embedrank.client._channel import target as grpc_target
from tests.conftest import ServerProcess

MODEL = "tiny-bert"
WORKERS = 8


def _ok_encodes(server: ServerProcess) -> float:
    found = re.search(r'^embedrank_requests_total\{code="OK",rpc="Encode"\} ([\d.e+]+)$', server.metrics(), re.M)
    return float(found.group(1)) if found else 0.0


class Load:
    """WORKERS callers, each sending the next Encode as soon as the last is answered."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.done: list[float] = []  # answer times
        self.failed: list[tuple[float, EmbedRankError]] = []
        self.running = True

    async def _worker(self, i: int) -> None:
        n = 0
        while self.running:
            n += 1
            try:
                vectors = await self.client.encode(MODEL, [f"caller {i} sends text number {n}"])
                assert vectors.shape == (1, 32)
                self.done.append(time.monotonic())
            except EmbedRankError as err:
                self.failed.append((time.monotonic(), err))

    def start(self) -> list[asyncio.Task[None]]:
        return [asyncio.ensure_future(self._worker(i)) for i in range(WORKERS)]

    def rate(self, since: float, until: float) -> float:
        return sum(since <= t < until for t in self.done) / (until - since)


@pytest.fixture()
def replicas(tiny_repo: Path, workdir: Path) -> list[ServerProcess]:
    started: list[ServerProcess] = []
    try:
        for i in range(3):
            repo = workdir / f"repo-replica-{i}-{time.monotonic_ns()}"
            shutil.copytree(tiny_repo / MODEL, repo / MODEL)
            started.append(ServerProcess(
                repo, "--metrics-port", "0", "--threads", "1", "--workers", "1",
                "--max-connection-age-s", "3", "--shutdown-grace-s", "5",
            ))
        yield started
    finally:
        for s in started:
            s.stop()


def test_several_addresses_become_one_ipv4_target() -> None:
    assert grpc_target("dns:///embedrank:50051") == "dns:///embedrank:50051"
    assert grpc_target(["127.0.0.1:1", "127.0.0.1:2"]) == "ipv4:127.0.0.1:1,127.0.0.1:2"
    assert grpc_target(["[::1]:1", "[::1]:2"]) == "ipv6:[::1]:1,[::1]:2"
    assert grpc_target(["localhost:7", "127.0.0.1:8"]).startswith("ipv4:127.0.0.1:7")
    with pytest.raises(ValueError, match="host:port"):
        grpc_target(["127.0.0.1", "127.0.0.1:2"])
    with pytest.raises(ValueError, match="one family"):
        grpc_target(["127.0.0.1:1", "[::1]:2"])


async def test_balanced_and_no_call_lost_when_replicas_go(replicas: list[ServerProcess]) -> None:
    async with AsyncClient([s.target for s in replicas], timeout=30) as client:
        load = Load(client)
        tasks = load.start()
        try:
            await asyncio.sleep(1.0)  # every replica connected
            before = [await asyncio.to_thread(_ok_encodes, s) for s in replicas]
            t0 = time.monotonic()
            await asyncio.sleep(4.0)
            t1 = time.monotonic()
            after = [await asyncio.to_thread(_ok_encodes, s) for s in replicas]
            shares = [a - b for a, b in zip(after, before)]
            total = sum(shares)
            assert total > 100, shares
            assert all(share >= 0.2 * total for share in shares), shares

            replicas[0].proc.send_signal(signal.SIGTERM)  # drains
            await asyncio.sleep(0.5)
            replicas[1].proc.send_signal(signal.SIGKILL)  # gone, calls on it cut off
            t_kill = time.monotonic()
            await asyncio.sleep(4.0)
            t2 = time.monotonic()
        finally:
            load.running = False
            await asyncio.gather(*tasks)
    assert not load.failed, [f"{t - t0:.2f}s: {e.code.name} {e.message}" for t, e in load.failed[:10]]
    assert replicas[0].proc.wait(10) == 0  # the drained one exited cleanly
    assert replicas[1].proc.wait(10) == -signal.SIGKILL
    before_rate = load.rate(t0, t1)
    # Throughput comes back: from a second after the kill, no half-second without answers, and the
    # last two seconds on the one replica left at least 0.3x what three did (one server process
    # uses about one core; the three shared this machine's two).
    windows = [load.rate(t, t + 0.5) for t in (t_kill + 1.0 + 0.5 * i for i in range(int((t2 - t_kill - 1.0) / 0.5)))]
    assert windows and min(windows) > 0, windows
    after_rate = load.rate(t2 - 2.0, t2)
    assert after_rate >= 0.3 * before_rate, (before_rate, after_rate)
