"""Session fixtures: checkpoints, one exported model repository, one live server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import checkpoints

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

EMBEDRANK = [sys.executable, "-m", "embedrank.cli"]


def export(source: Path, output: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EMBEDRANK, "export", str(source), "--output", str(output), "--corpus-size", "200", *extra],
        capture_output=True, text=True, timeout=900,
    )


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embedrank")


@pytest.fixture(scope="session")
def sources(workdir: Path) -> dict[str, Path]:
    out = workdir / "checkpoints"
    out.mkdir()
    built = {f"tiny-{a}": checkpoints.build_bi_encoder(out, a) for a in ("bert", "mpnet", "xlmr")}
    built["tiny-rerank"] = checkpoints.build_cross_encoder(out, real=False)
    built["minilm-rerank"] = checkpoints.build_cross_encoder(out, real=True)
    built |= {f"tiny-{k}": checkpoints.build_classifier(out, k) for k in ("nli", "multilabel")}
    built["minilm"] = checkpoints.minilm_path()
    return built


@pytest.fixture(scope="session")
def repo(workdir: Path, sources: dict[str, Path]) -> Path:
    return export_all(sources, workdir / "repo")


def export_all(sources: dict[str, Path], repo: Path) -> Path:
    """Each checkpoint exported with the defaults into ``repo`` under its name."""
    for name, src in sources.items():
        result = export(src, repo / name)
        assert result.returncode == 0, f"export {name} failed:\n{result.stderr[-4000:]}"
    return repo


@pytest.fixture(scope="session")
def tiny_repo(workdir: Path) -> Path:
    """A repository holding only tiny-bert (exported alone: for tests that need any small model
    without waiting for the whole ``repo``). Copy it before changing it."""
    out = workdir / "tiny-checkpoint"
    out.mkdir()
    repo = workdir / "tiny-repo"
    result = export(checkpoints.build_bi_encoder(out, "bert"), repo / "tiny-bert")
    assert result.returncode == 0, f"export tiny-bert failed:\n{result.stderr[-4000:]}"
    return repo


class ServerProcess:
    def __init__(self, repo: Path, *args: str, python: str = sys.executable, start_s: float = 120,
                 env: dict[str, str] | None = None) -> None:
        """``python``: another environment's interpreter (tests/test_import.py: the one without torch);
        ``start_s``: how long it may take to listen (longer where `serve --model` exports first); ``env``: variables
        added to this process's."""
        port_file = repo.parent / f"port-{time.monotonic_ns()}"
        self.log_path = repo.parent / f"server-{time.monotonic_ns()}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [python, "-m", "embedrank.cli", "serve", "--model-repository", str(repo), "--host", "127.0.0.1", "--port", "0",
             "--port-file", str(port_file), *args],
            stdout=self.log, stderr=subprocess.STDOUT, text=True, env={**os.environ, **env} if env else None,
        )
        deadline = time.monotonic() + start_s
        while not port_file.exists() or not port_file.read_text().strip():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{self.output()}")
            time.sleep(0.1)
        self.port = int(port_file.read_text())
        self.target = f"127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log_path.read_text()

    def http_base(self) -> str:
        """The HTTP port's base URL (started with ``--http-port 0``), from the line announcing it."""
        found = re.search(r"HTTP listening on (https?)://[\d.]+:(\d+)", self.output())
        assert found, self.output()[-3000:]
        return f"{found.group(1)}://127.0.0.1:{found.group(2)}"

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def metrics(self) -> str:
        import re
        import urllib.request

        port = re.search(r"metrics on http://[\d.]+:(\d+)/metrics", self.output())
        assert port, "start the server with --metrics-port"
        return urllib.request.urlopen(f"http://127.0.0.1:{port.group(1)}/metrics", timeout=10).read().decode()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture(scope="session")
def server(repo: Path) -> Iterator[ServerProcess]:
    with ServerProcess(repo, "--max-inputs-per-request", "256", "--metrics-port", "0") as proc:
        yield proc


@pytest.fixture(scope="session")
def target(server: ServerProcess) -> str:
    return server.target


@pytest.fixture(scope="module")
def base(server: ServerProcess) -> str:
    """The HTTP base URL of the ``server`` in scope: a module that serves HTTP overrides ``server``."""
    return server.http_base()


def edited_copy(model: Path, repo: Path, edit: Callable[[dict], None], *, name: str | None = None) -> Path:
    """A repository ``repo`` holding a copy of ``model`` (REPO/NAME, version 1) as ``name`` whose
    manifest ``edit`` changed in place: a model as an older exporter, or a tampered one, would leave it."""
    import json
    import shutil

    shutil.copytree(model, repo / (name or model.name))
    path = repo / (name or model.name) / "1" / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))
    return repo


@pytest.fixture(scope="session")
def repo_without_ranges(workdir: Path, repo: Path) -> Iterator[str]:
    """A second server whose only model's manifest has no calibration ranges."""
    other = edited_copy(repo / "tiny-bert", workdir / "repo-noranges",
                        lambda m: m["embedding"].__setitem__("ranges", None), name="noranges")
    proc = ServerProcess(other)
    yield proc.target
    proc.stop()


@pytest.fixture(scope="session")
def kinds_sources(workdir: Path) -> dict[str, Path]:
    """The sparse and multi-vector checkpoints (tests/checkpoints.py), and the plain masked LM the
    SparseEncoder was made from."""
    out = workdir / "kinds-checkpoints"
    out.mkdir()
    sparse = checkpoints.build_sparse_encoder(out)
    return {"tiny-sparse": sparse, "tiny-mlm-hf": out / "tiny-mlm-hf", "tiny-colbert": checkpoints.build_multi_vector(out)}


@pytest.fixture(scope="session")
def kinds_repo(workdir: Path, kinds_sources: dict[str, Path], tiny_repo: Path) -> Path:
    """tiny-sparse and tiny-colbert exported, beside a copy of tiny-bert (for the wrong-kind calls)."""
    import shutil

    repo = workdir / "kinds-repo"
    for name in ("tiny-sparse", "tiny-colbert"):
        result = export(kinds_sources[name], repo / name)
        assert result.returncode == 0, f"export {name} failed:\n{result.stderr[-4000:]}"
    shutil.copytree(tiny_repo / "tiny-bert", repo / "tiny-bert")
    return repo


@pytest.fixture(scope="session")
def bgem3_source(workdir: Path) -> Path:
    """A tiny checkpoint in BGE-M3's layout (FlagEmbedding's sparse_linear.pt and colbert_linear.pt)."""
    out = workdir / "bgem3-checkpoint"
    out.mkdir()
    return checkpoints.build_bgem3(out)


@pytest.fixture(scope="session")
def bgem3_export(workdir: Path, bgem3_source: Path) -> Path:
    """``bgem3_source`` exported with the defaults (tests/test_bgem3.py, the README's hybrid block); copy it to
    serve it."""
    folder = workdir / "bgem3-export" / "bge-m3"
    result = export(bgem3_source, folder)
    assert result.returncode == 0, f"export failed:\n{result.stderr[-4000:]}"
    return folder


@pytest.fixture(scope="session")
def kinds_server(kinds_repo: Path) -> Iterator[ServerProcess]:
    with ServerProcess(kinds_repo) as proc:
        yield proc
