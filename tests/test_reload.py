"""Model updates without a restart, against a live server under load.

A new version folder is picked up (by polling, and on SIGHUP), loaded and warmed, then serves new
requests while the old one finishes its own: not one request fails across the swap. A broken new
version is refused loudly and the old one keeps serving; a removed model drains and is unloaded.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from embedrank.client import AsyncClient, Client, EmbedRankError
from tests.conftest import ServerProcess

MODEL = "tiny-bert"


def publish(model_dir: Path, source: Path, version: int, *, break_graph: bool = False) -> Path:
    """Copy ``source`` as version ``version`` the way the exporter publishes: into a hidden folder
    first, then one rename, so the server never sees half a version."""
    staging = model_dir.parent / f".staging-{model_dir.name}-{version}"
    shutil.copytree(source, staging)
    manifest = json.loads((staging / "manifest.json").read_text())
    manifest["version"] = version
    (staging / "manifest.json").write_text(json.dumps(manifest))
    if break_graph:
        (staging / "model.onnx").write_bytes(b"this is not an ONNX graph")
    final = model_dir / str(version)
    staging.rename(final)
    return final


class Load:
    """Callers sending Encode one after another until stopped; every failure is kept."""

    def __init__(self, target: str, model: str = MODEL, callers: int = 8) -> None:
        self.target, self.model, self.callers = target, model, callers
        self.ok = 0
        self.failed: list[EmbedRankError] = []
        self.running = True

    async def _caller(self, client: AsyncClient, i: int) -> None:
        n = 0
        while self.running:
            n += 1
            try:
                # Long enough that some requests are always in flight on the old version as it is replaced.
                vectors = await client.encode(self.model, [f"caller {i} request {n} " + "word " * 40] * 32)
                assert vectors.shape == (32, 32)
                self.ok += 1
            except EmbedRankError as err:
                self.failed.append(err)

    async def run_until(self, done: Callable[[], bool], timeout: float) -> None:
        async with AsyncClient(self.target, timeout=30) as client:
            tasks = [asyncio.ensure_future(self._caller(client, i)) for i in range(self.callers)]
            try:
                deadline = time.monotonic() + timeout
                while not await asyncio.to_thread(done):
                    assert time.monotonic() < deadline, "timed out"
                    await asyncio.sleep(0.2)
                await asyncio.sleep(1.0)  # and a while on the new state
            finally:
                self.running = False
                await asyncio.gather(*tasks)


def served_version(target: str, model: str = MODEL) -> str:
    with Client(target, timeout=10) as client:
        return client.get_model(model).version


def logged(proc: ServerProcess, text: str) -> Callable[[], bool]:
    return lambda: text in proc.output()


@pytest.fixture()
def model_repo(tiny_repo: Path, workdir: Path) -> Path:
    repo = workdir / f"repo-reload-{time.monotonic_ns()}"
    shutil.copytree(tiny_repo / MODEL, repo / MODEL)
    shutil.copytree(tiny_repo / MODEL, repo / "second")
    return repo


@pytest.fixture()
def polling_server(model_repo: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(model_repo, "--model-poll-s", "0.5", "--threads", "1", "--workers", "1")
    yield proc
    assert proc.stop() == 0, proc.output()[-3000:]


async def test_new_version_swapped_in_under_load_without_a_failure(polling_server: ServerProcess, model_repo: Path) -> None:
    proc, model_dir = polling_server, model_repo / MODEL
    assert served_version(proc.target) == "1"
    load = Load(proc.target)
    publish(model_dir, model_dir / "1", 2)
    await load.run_until(logged(proc, f"model {MODEL} version 1 unloaded (replaced by version 2)"), timeout=60)
    assert not load.failed, [f"{e.code.name}: {e.message}" for e in load.failed[:5]]
    assert load.ok > 20
    assert served_version(proc.target) == "2"
    out = proc.output()
    # Loaded and warmed before it took requests; the old one unloaded only after.
    assert out.index(f"model {MODEL} version 2 serving") < out.index(f"model {MODEL} version 1 unloaded")
    # Requests were running on version 1 as it was replaced, and they are among the ones that succeeded.
    in_flight = re.search(rf"model {MODEL} version 1 replaced by version 2: (\d+) input\(s\) in flight", out)
    assert in_flight and int(in_flight.group(1)) > 0, out[-3000:]


async def test_broken_version_refused_loudly_old_keeps_serving(polling_server: ServerProcess, model_repo: Path) -> None:
    proc, model_dir = polling_server, model_repo / MODEL
    load = Load(proc.target)
    publish(model_dir, model_dir / "1", 2, break_graph=True)
    await load.run_until(logged(proc, f"model {MODEL} version 2 REFUSED, version 1 keeps serving"), timeout=60)
    assert not load.failed, [f"{e.code.name}: {e.message}" for e in load.failed[:5]]
    assert served_version(proc.target) == "1"
    # A manifest that is not JSON is refused too (by the scan); each problem is logged once, not every poll.
    bad = publish(model_dir, model_dir / "1", 3)
    (bad / "manifest.json").write_text("{not json")
    await asyncio.sleep(2.5)  # several polls
    out = proc.output()
    assert out.count(f"model {MODEL} version 2 REFUSED") == 1
    assert out.count("3/manifest.json: not readable JSON") == 1
    assert served_version(proc.target) == "1"
    # Fixed by a newer version: that one is served.
    publish(model_dir, model_dir / "1", 4)
    deadline = time.monotonic() + 30
    while served_version(proc.target) != "4":
        assert time.monotonic() < deadline, proc.output()[-3000:]
        await asyncio.sleep(0.2)


async def test_removed_model_drains_and_unloads(polling_server: ServerProcess, model_repo: Path) -> None:
    proc = polling_server
    load = Load(proc.target, model="second")
    shutil.rmtree(model_repo / "second")
    await load.run_until(logged(proc, "model second version 1 unloaded (removed)"), timeout=60)
    # Calls made before the removal was noticed were answered; after it, NOT_FOUND, nothing else.
    assert {e.code for e in load.failed} <= {grpc.StatusCode.NOT_FOUND}
    assert load.ok > 0
    with Client(proc.target, timeout=10) as client, pytest.raises(EmbedRankError) as info:
        client.encode("second", ["gone"])
    assert info.value.code == grpc.StatusCode.NOT_FOUND
    assert served_version(proc.target) == "1"  # the other model is untouched


def test_sighup_without_polling(model_repo: Path) -> None:
    proc = ServerProcess(model_repo, "--model-poll-s", "0")  # the repository is read again on SIGHUP only
    try:
        model_dir = model_repo / MODEL
        publish(model_dir, model_dir / "1", 2)
        time.sleep(1.5)
        assert served_version(proc.target) == "1"
        proc.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while served_version(proc.target) != "2":
            assert time.monotonic() < deadline, proc.output()[-3000:]
            time.sleep(0.2)
    finally:
        assert proc.stop() == 0


def test_a_new_export_appears_without_a_signal(model_repo: Path) -> None:
    """By default (--model-poll-s 2) a version published while the server runs is served within
    seconds, and so is a new model; a removed model goes."""
    proc = ServerProcess(model_repo)
    try:
        model_dir = model_repo / MODEL
        publish(model_dir, model_dir / "1", 2)
        wait_for(lambda: served_version(proc.target) == "2", proc)
        shutil.copytree(model_dir / "1", model_repo / ".third" / "1")
        (model_repo / ".third").rename(model_repo / "third")  # a first version brings its NAME/ folder
        wait_for(lambda: "third" in loaded(proc.target), proc)
        shutil.rmtree(model_repo / "second")
        wait_for(lambda: "second" not in loaded(proc.target), proc)
    finally:
        assert proc.stop() == 0


def loaded(target: str) -> set[str]:
    with Client(target, timeout=10) as client:
        return {m.name for m in client.list_models()}


def wait_for(condition: Callable[[], bool], proc: ServerProcess, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, proc.output()[-3000:]
        time.sleep(0.2)
