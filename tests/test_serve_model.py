"""`embedrank serve --model SOURCE`: one command from a checkpoint to a served model (issue #36)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from embedrank.cli import models
from embedrank.client import Client
from embedrank.exporter import corpus
from embedrank.model.errors import ConfigError
from tests import checkpoints
from tests.conftest import EMBEDRANK, ServerProcess

TEXTS = corpus.parity_texts()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _health(port: int) -> int | None:
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            return int(health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1).status)
    except grpc.RpcError:
        return None  # not listening yet


@pytest.mark.slow
def test_serve_model_exports_once_then_serves(workdir: Path) -> None:
    from sentence_transformers import SentenceTransformer

    source = checkpoints.minilm_path()
    repo = workdir / "one-command" / "models"  # not there yet: serve --model creates it
    port = _free_port()
    log_path = workdir / "one-command-first.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [*EMBEDRANK, "serve", "--model-repository", str(repo), "--host", "127.0.0.1", "--port", str(port),
             "--model", f"minilm={source}"],
            stdout=log, stderr=subprocess.STDOUT, text=True,
        )
        try:
            seen: list[int | None] = []
            deadline = time.monotonic() + 600
            while (status := _health(port)) != health_pb2.HealthCheckResponse.SERVING:
                assert proc.poll() is None, log_path.read_text()[-4000:]
                assert time.monotonic() < deadline, "not SERVING after 600 s"
                seen.append(status)
                time.sleep(0.5)
            # It answered while exporting, and said NOT_SERVING until the model was in.
            assert health_pb2.HealthCheckResponse.NOT_SERVING in seen
            ref = SentenceTransformer(str(source), device="cpu").encode(TEXTS, convert_to_numpy=True)
            with Client(f"127.0.0.1:{port}") as client:
                got = client.encode("minilm", TEXTS)
            cos = (got * ref).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1))
            assert float(cos.min()) >= 0.99999
        finally:
            proc.terminate()
            proc.wait(60)
    out = log_path.read_text()
    assert "[1/6] loading" in out and "model minilm: exported" in out, out[-3000:]
    manifest = (repo / "minilm" / "1" / "manifest.json").read_text()
    assert '"key"' in manifest

    # The second start finds the export (same folder content, same options) and does not export again.
    second = ServerProcess(repo, "--model", f"minilm={source}")
    try:
        with Client(second.target) as client:
            again = client.encode("minilm", TEXTS)
        np.testing.assert_allclose(again, got, atol=1e-6)
    finally:
        second.stop()
    out = second.output()
    assert "is the verified export of" in out and "not exporting again" in out, out[-3000:]
    assert "[1/6]" not in out
    assert sorted(p.name for p in (repo / "minilm").iterdir()) == ["1"]


def test_model_spec_grammar(tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    spec = models.parse(f"mini={folder}:quantize=avx512-vnni,optimize=O3")
    assert (spec.name, spec.source, spec.revision) == ("mini", str(folder), None)
    assert spec.export_args() == ["--optimize", "O3", "--quantize", "avx512-vnni"]
    assert models.parse(str(folder)).name == "ckpt"
    big = models.parse(f"big={folder}:external-data=always,quantize=avx2")
    assert big.export_args() == ["--external-data", "always", "--quantize", "avx2"]
    hub = models.parse("BAAI/bge-small-en-v1.5@v1:kind=embedding")
    assert (hub.name, hub.source, hub.revision, hub.options) == ("bge-small-en-v1.5", "BAAI/bge-small-en-v1.5", "v1",
                                                                 {"kind": "embedding"})
    # The same content and options give the same key; other options another.
    assert models.key("folder:x", spec) == models.key("folder:x", models.parse(f"mini={folder}:optimize=O3,quantize=avx512-vnni"))
    assert models.key("folder:x", spec) != models.key("folder:x", models.parse(f"mini={folder}"))


@pytest.mark.parametrize(("text", "message"), [
    ("x={folder}:quantize=avx9", "quantize='avx9'; choose one of"),
    ("x={folder}:colour=blue", "unknown option 'colour'"),
    ("x={folder}:external-data=maybe", "external-data='maybe'; choose one of auto, always, never"),
    ("x={folder}:kind=embedding,kind=rerank", "option 'kind' given twice"),
    ("x={folder}@main", "a revision is for hub ids"),
    ("x=./no/such/folder", "no folder here and not a hub id"),
    ("nohub", "no folder here and not a hub id"),
    ("org/name@", "nothing after '@'"),
    ("a/b=org/name", "is not a model name"),
    ("=", "no SOURCE"),
])
def test_model_spec_mistakes_name_the_flag(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        models.parse(text.format(folder=tmp_path))
    assert message in info.value.message and "--model" in info.value.message


def test_same_name_twice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="the name 'tmp' is taken"):
        models.parse_all([f"tmp={tmp_path}", f"tmp={tmp_path}:quantize=avx2"])


def test_serve_model_failure_is_one_line(tmp_path: Path) -> None:
    """A folder that is no checkpoint: the exporter's one line, then serve's, exit non-zero; no server left."""
    bad = tmp_path / "notamodel"
    bad.mkdir()
    (bad / "README.md").write_text("nothing here")
    result = subprocess.run(
        [*EMBEDRANK, "serve", "--model-repository", str(tmp_path / "repo"), "--port", "0", "--model", f"bad={bad}"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("embedrank serve: --model 'bad="), last
    assert "the export failed" in last
    assert "Traceback" not in result.stderr


def test_models_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(models.MODELS_ENV, f"a={tmp_path}  b={tmp_path}:quantize=arm64")
    assert [(s.name, s.options) for s in models.parse_all(None)] == [("a", {}), ("b", {"quantize": "arm64"})]
    assert [s.name for s in models.parse_all([f"c={tmp_path}"])] == ["c"]  # flags win over the variable


def test_pull_without_model_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run([*EMBEDRANK, "pull", "--model-repository", str(tmp_path)], capture_output=True, text=True,
                            timeout=120, env={k: v for k, v in __import__("os").environ.items() if k != models.MODELS_ENV})
    assert result.returncode == 2 and "give at least one --model" in result.stderr


def test_sigterm_while_exporting_stops_export_and_server(tmp_path: Path) -> None:
    source = checkpoints.build_bi_encoder(tmp_path, "bert")
    repo, port = tmp_path / "repo", _free_port()
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [*EMBEDRANK, "serve", "--model-repository", str(repo), "--host", "127.0.0.1", "--port", str(port),
             "--model", f"tiny={source}"], stdout=log, stderr=subprocess.STDOUT, text=True,
        )
        deadline = time.monotonic() + 120
        while _health(port) != health_pb2.HealthCheckResponse.NOT_SERVING or "[1/6]" not in log_path.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.2)
        proc.terminate()
        assert proc.wait(60) == 0, log_path.read_text()[-3000:]
    assert "stopped before serving" in log_path.read_text()
    assert not (repo / "tiny").exists()  # the export published nothing
