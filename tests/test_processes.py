"""`embedrank serve --processes 2`: two server processes on one port, both answering, both draining."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import time
import urllib.request
from pathlib import Path

from embedrank.client import AsyncClient, Client
from tests.conftest import ServerProcess


def _ok_encodes(metrics_port: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    found = re.search(r'embedrank_requests_total\{code="OK",rpc="Encode"\} ([0-9.]+)', text)
    return float(found.group(1)) if found else 0.0


async def test_two_processes_share_the_port_and_drain(repo: Path, workdir: Path) -> None:
    only = workdir / f"repo-procs-{time.monotonic_ns()}"
    shutil.copytree(repo / "tiny-bert", only / "tiny-bert")
    proc = ServerProcess(only, "--processes", "2", "--metrics-port", "0", "--shutdown-grace-s", "30")
    try:
        ports = re.findall(r"metrics on http://[\d.]+:(\d+)/metrics", proc.output())
        assert len(ports) == 2, proc.output()
        for _ in range(40):  # a new connection each time: the kernel spreads them over the processes
            with Client(proc.target) as client:
                assert client.encode("tiny-bert", ["which process answers?"]).shape == (1, 32)
        served = [_ok_encodes(p) for p in ports]
        assert sum(served) == 40 and min(served) >= 1, served
        # SIGTERM drains both: every call already received is answered.
        clients = [AsyncClient(proc.target) for _ in range(8)]
        calls = [asyncio.ensure_future(c.encode("tiny-bert", [f"text {i} {j}" for j in range(64)]))
                 for i, c in enumerate(clients)]
        await asyncio.sleep(0.3)
        proc.proc.send_signal(signal.SIGTERM)
        results = await asyncio.gather(*calls, return_exceptions=True)
        for c in clients:
            await c.close()
        assert all(not isinstance(r, BaseException) and r.shape == (64, 32) for r in results), results
        assert proc.proc.wait(60) == 0
    finally:
        proc.stop()
