"""What a new user meets first: readable exports, one-line start-up errors, flags where they are
typed, and model descriptions without the exporting machine's paths or calibration arrays."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from embedrank.client import Client
from embedrank.server import config
from embedrank.cli import build_parser
from embedrank.v1 import embed_pb2, models_pb2, models_pb2_grpc
from tests.conftest import EMBEDRANK, export

HOST_USER = 1000  # who "exported on the host"; the server is then another user
# As root, the server runs without the capabilities that let root read anything, so the files'
# modes decide, as for any other user. (Running it as nobody is not possible where Python lives
# under a 0700 /root.) Elsewhere the export and the server are the same user: the modes are checked.
AS_OTHER = (
    hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("setpriv") is not None
    and subprocess.run(["setpriv", "--bounding-set=-dac_override", "true"], capture_output=True).returncode == 0
)
NO_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search"]


def _hand_to_host_user(repo: Path) -> None:
    for path in (repo, *repo.rglob("*")):
        os.chown(path, HOST_USER, HOST_USER)


def _serve(repo: Path, run_dir: Path) -> subprocess.Popen[str]:
    """`embedrank serve` on port 0 (as another user where AS_OTHER); the port file comes from EMBEDRANK_PORT_FILE."""
    env = {**os.environ, "EMBEDRANK_PORT_FILE": str(run_dir / "port"), "EMBEDRANK_PORT": "0", "EMBEDRANK_HOST": "127.0.0.1"}
    return subprocess.Popen(
        [*(NO_DAC if AS_OTHER else []), *EMBEDRANK, "serve", "--model-repository", str(repo)], env=env, cwd=run_dir,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _wait_port(proc: subprocess.Popen[str], port_file: Path) -> int:
    deadline = time.monotonic() + 120
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the server did not start:\n{proc.communicate()[0][-4000:]}")
        time.sleep(0.1)
    return int(port_file.read_text())


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder every user may enter (pytest's own temporary folders are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="embedrank-shared-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _umask_022() -> None:
    os.umask(0o022)


@pytest.mark.slow
def test_exports_are_readable_by_another_user(sources: dict[str, Path], shared_dir: Path) -> None:
    repo = shared_dir / "repo"
    result = subprocess.run(
        [*EMBEDRANK, "export", str(sources["tiny-bert"]), "--output", str(repo / "tiny"), "--corpus-size", "200"],
        capture_output=True, text=True, timeout=900, preexec_fn=_umask_022,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    version = repo / "tiny" / "1"
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (repo, repo / "tiny", version, *version.iterdir())}
    assert modes == {
        "repo": 0o755, "tiny": 0o755, "1": 0o755, "model.onnx": 0o644, "tokenizer.json": 0o644, "manifest.json": 0o644,
    }
    run_dir = shared_dir / "run"
    run_dir.mkdir()
    if AS_OTHER:
        _hand_to_host_user(repo)
    proc = _serve(repo, run_dir)
    try:
        port = _wait_port(proc, run_dir / "port")
        with Client(f"127.0.0.1:{port}") as client:
            assert client.encode("tiny", ["read by another user"]).shape[0] == 1
    finally:
        proc.terminate()
        proc.wait(30)


def test_unreadable_version_says_fix_permissions_not_reexport(repo: Path, shared_dir: Path) -> None:
    only = shared_dir / "repo"
    shutil.copytree(repo / "tiny-bert", only / "tiny-bert")
    for path in (only, only / "tiny-bert", *only.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    (only / "tiny-bert" / "1").chmod(0o700)  # as the old exporter's mkdtemp left it
    if AS_OTHER:
        _hand_to_host_user(only)
    else:  # the owner can still enter a 0700 folder: take its read bit on the manifest away instead
        (only / "tiny-bert" / "1" / "manifest.json").chmod(0)
    run_dir = shared_dir / "run"
    run_dir.mkdir()
    proc = _serve(only, run_dir)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2, out
    assert "permission denied" in out and f"chmod -R a+rX {only}" in out, out
    assert "re-export the model" not in out and "Traceback" not in out, out


def test_port_in_use_is_one_line_naming_the_flag_and_variable(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*EMBEDRANK, "serve", "--model-repository", str(tmp_path), "--host", "127.0.0.1", "--port", str(port)],
            capture_output=True, text=True, timeout=60,
        )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "in use" in lines[0]
    assert "--port" in lines[0] and "EMBEDRANK_PORT" in lines[0]


def test_log_level_before_or_after_the_subcommand_and_from_the_env(monkeypatch: pytest.MonkeyPatch) -> None:
    parse = build_parser().parse_args
    assert parse(["serve", "--model-repository", "m", "--log-level", "debug"]).log_level == "DEBUG"
    assert parse(["--log-level", "ERROR", "serve", "--model-repository", "m"]).log_level == "ERROR"
    assert parse(["export", "src", "--output", "r/m", "--log-level", "info"]).log_level == "INFO"
    assert parse(["serve", "--model-repository", "m"]).log_level is None
    monkeypatch.setenv("EMBEDRANK_LOG_LEVEL", "WARNING")
    assert build_parser().parse_args(["serve", "--model-repository", "m"]).log_level == "WARNING"
    # end to end: after the sub-command it is not a usage error, the server gets to its own check
    result = subprocess.run(
        [*EMBEDRANK, "serve", "--model-repository", "/nonexistent-repo", "--log-level", "DEBUG"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2 and "usage:" not in result.stderr
    assert "--model-repository /nonexistent-repo: not a folder" in result.stderr


def test_every_serve_flag_has_an_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    serve = next(a for a in build_parser()._actions if a.dest == "command").choices["serve"]  # type: ignore[index]
    flags = [a for a in serve._actions if a.option_strings and a.dest != "help"]
    assert len(flags) >= 20
    for action in flags:
        assert f"EMBEDRANK_{action.dest.upper()}" in (action.help or ""), action.option_strings
    monkeypatch.setenv("EMBEDRANK_PORT_FILE", "/run/embedrank.port")
    assert config.parse(["--model-repository", "m"]).port_file == "/run/embedrank.port"


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}[{i}]")


def test_models_service_answers_what_a_caller_needs_and_no_paths(target: str, repo: Path, workdir: Path) -> None:
    with grpc.insecure_channel(target) as channel:
        stub = models_pb2_grpc.ModelsStub(channel)
        listed = {m.name: m for m in stub.ListModels(models_pb2.ListModelsRequest(), timeout=10).models}
        minilm = stub.GetModel(models_pb2.GetModelRequest(name="minilm"), timeout=10)
        reranker = stub.GetModel(models_pb2.GetModelRequest(name="minilm-rerank"), timeout=10)
    assert listed["minilm"] == minilm
    assert (minilm.dimensions, minilm.max_tokens, minilm.pooling, minilm.normalize) == (384, 256, "mean", True)
    assert embed_pb2.PRECISION_INT8 in minilm.output_precisions and minilm.graph_precision == "fp32"
    assert (reranker.num_labels, reranker.activation, reranker.kind) == (1, "sigmoid", models_pb2.MODEL_KIND_RERANK)
    for info in listed.values():
        public = json.loads(info.manifest_json)
        assert len(info.manifest_json) < 4000, f"{info.name}: {len(info.manifest_json)} characters"
        for where, value in _walk(public):
            assert not (isinstance(value, str) and (value.startswith("/") or str(workdir) in value)), f"{info.name}{where}: {value}"
            assert not (isinstance(value, list) and len(value) > 16), f"{info.name}{where}: an array of {len(value)}"
        assert public["fidelity"]["parity"]["items"] > 0 and public["graph"]["precision"] == info.graph_precision
    public = json.loads(minilm.manifest_json)
    assert public["source"] == {"name": "model", "model_type": "bert"}  # the packaged checkpoint's folder
    assert public["embedding"]["ranges_calibrated"] is True and "ranges" not in public["embedding"]
    with Client(target) as client:  # the Python client carries all of it
        info, rerank_info = client.get_model("minilm"), client.get_model("minilm-rerank")
    assert info.pooling == ("mean",) and info.normalize is True and info.default_prompt_name is None
    assert set(info.output_precisions) == {"float32", "int8", "uint8", "binary", "ubinary"}
    assert info.manifest == public and (rerank_info.num_labels, rerank_info.activation) == (1, "sigmoid")
    on_disk = json.loads((repo / "minilm" / "1" / "manifest.json").read_text())
    assert len(on_disk["embedding"]["ranges"]["min"]) == 384 and Path(on_disk["source"]["path"]).is_absolute()


def test_an_output_that_cannot_be_written_is_refused_before_loading(sources: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "repo").write_text("not a folder")
    result = export(sources["tiny-bert"], tmp_path / "repo" / "m")
    assert result.returncode == 2 and "[1/" not in result.stderr, result.stderr
    assert f"--output {tmp_path / 'repo' / 'm'}: {tmp_path / 'repo'} is not a folder" in result.stderr


@pytest.mark.slow
def test_java_example_as_the_readme_runs_it_prints_no_ansi_codes(target: str) -> None:
    tools = {name: shutil.which(name) for name in ("mvn", "java")}
    if not all(tools.values()):
        if os.environ.get("CI"):
            pytest.fail(f"CI needs Maven and Java: {tools}")
        pytest.skip(f"not installed: {tools}")
    java_dir = Path(__file__).resolve().parent.parent / "clients" / "java"
    readme = (java_dir / "README.md").read_text(encoding="utf-8")
    block = next(b for b in readme.split("```sh\n")[1:] if "dependency:build-classpath" in b).split("```")[0]
    build, run_embed, run_rerank = block.strip().splitlines()
    built = subprocess.run(["bash", "-c", build], cwd=java_dir, capture_output=True, text=True, timeout=1200)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    for line, words in ((run_embed, "minilm: 4 embeddings of 384 dimensions"), (run_rerank, "rerank (minilm-rerank)")):
        line = line.replace("localhost:50051", target).replace("demo-reranker", "minilm-rerank")  # the session's models
        result = subprocess.run(["bash", "-c", line], cwd=java_dir, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert words in result.stdout and "cosine similarities:" in result.stdout, result.stdout
        assert "\x1b" not in result.stdout + result.stderr, repr(result.stdout + result.stderr)
