"""Graphs past protobuf's 2 GiB: the weights as ONNX external data (model.onnx + model.onnx.data) through
export, optimize, quantize, OpenVINO, `embedrank import` of the Hub's layout (onnx/model.onnx_data),
publish, load and serve. `--external-data always` runs that path on tiny models; the 2 GiB decision
itself is tested on the helper with a lowered limit (a real 2.3 GB export: README's "Models past 2 GB", bench/external_data.py)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from embedrank.client import Client
from embedrank.exporter import corpus, graphfile
from embedrank.exporter.graphfile import ExternalData
from embedrank.model.errors import ConfigError
from tests import checkpoints
from tests.conftest import EMBEDRANK, ServerProcess, export

ALWAYS = ("--external-data", "always")
EXPORTS = {  # name: (source, flags)
    "bert": ("tiny-bert", ALWAYS),
    "bert-int8": ("tiny-bert", (*ALWAYS, "--quantize", "avx2")),
    "bert-ov": ("tiny-bert", (*ALWAYS, "--runtime", "openvino")),
    "rerank": ("tiny-rerank", ALWAYS),
}


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _manifest(version: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((version / "manifest.json").read_text())


def hub_layout(src: Path, out: Path) -> Path:
    """``src`` with onnx/model.onnx's weights moved to onnx/model.onnx_data, as the Hub's optimum exports
    of big models ship them."""
    import onnx

    ckpt = checkpoints.with_onnx_graph(src, out)
    graph = ckpt / "onnx" / "model.onnx"
    onnx.save_model(onnx.load(str(graph)), str(graph), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="model.onnx_data", size_threshold=1024)
    return ckpt


@pytest.fixture(scope="module")
def ext_repo(sources: dict[str, Path], workdir: Path) -> Path:
    repo = workdir / "external-data"
    for name, (src, flags) in EXPORTS.items():
        result = export(sources[src], repo / name, *flags)
        assert result.returncode == 0, f"{name}: {result.stderr[-3000:]}"
    hub = hub_layout(sources["tiny-bert"], workdir / "hub-layout" / "tiny-bert")
    for name, flags in (("imported", ALWAYS), ("imported-auto", ())):  # auto: a tiny graph is one file again
        result = subprocess.run([*EMBEDRANK, "import", str(hub), "--output", str(repo / name), "--corpus-size", "200",
                                 *flags], capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{name}: {result.stderr[-3000:]}"
    assert "weights in model.onnx_data" in result.stderr  # step 1 names the checkpoint's data file
    return repo


@pytest.fixture(scope="module")
def ext_server(ext_repo: Path) -> Iterator[ServerProcess]:
    with ServerProcess(ext_repo) as proc:
        yield proc


def test_files_on_disk(ext_repo: Path) -> None:
    for name in ("bert", "bert-int8", "bert-ov", "rerank", "imported"):
        version = ext_repo / name / "1"
        graph, data = version / "model.onnx", version / "model.onnx.data"
        record = _manifest(version)["graph"]["external_data"]
        assert record == {"file": "model.onnx.data", "bytes": data.stat().st_size}, name
        assert graph.stat().st_size < 64_000 < data.stat().st_size, name  # the graph alone, the weights beside it
        assert [p.name for p in graphfile.external_files(graph)] == ["model.onnx.data"], name
    one_file = ext_repo / "imported-auto" / "1"
    assert "external_data" not in _manifest(one_file)["graph"]
    assert not graphfile.external_files(one_file / "model.onnx")
    assert sorted(p.name for p in one_file.iterdir()) == ["manifest.json", "model.onnx", "tokenizer.json"]


def test_served_equal_to_sentence_transformers(ext_server: ServerProcess, sources: dict[str, Path]) -> None:
    from sentence_transformers import CrossEncoder, SentenceTransformer

    texts = corpus.parity_texts() + corpus.sentences(30)
    ref = SentenceTransformer(str(sources["tiny-bert"]), device="cpu").encode(texts, batch_size=16)
    docs = corpus.paragraphs(10)
    ref_scores = CrossEncoder(str(sources["tiny-rerank"]), device="cpu").predict([("What is a module?", d) for d in docs])
    with Client(ext_server.target) as client:
        for name, floor in (("bert", 0.99999), ("bert-ov", 0.99999), ("imported", 0.99999),
                            ("imported-auto", 0.99999), ("bert-int8", 0.95)):
            assert _cos(ref, client.encode(name, texts)).min() >= floor, name
        hits = client.rerank("rerank", "What is a module?", docs)
    got = np.array([h.score for h in sorted(hits, key=lambda h: h.index)])
    assert np.abs(ref_scores - got).max() <= 1e-4


def _copy(ext_repo: Path, repo: Path, name: str) -> Path:
    shutil.copytree(ext_repo / "bert", repo / name)
    return repo / name / "1"


def test_damaged_weights_refuse_that_model_only(ext_repo: Path, workdir: Path) -> None:
    repo = workdir / "external-data-damaged"
    shutil.copytree(ext_repo / "bert", repo / "good")
    missing = _copy(ext_repo, repo, "missing")
    (missing / "model.onnx.data").unlink()
    truncated = _copy(ext_repo, repo, "truncated")
    with open(truncated / "model.onnx.data", "r+b") as fh:
        fh.truncate(1000)
    # Cut short and its manifest edited to match: onnxruntime's own refusal, one line, the server stays up.
    unreadable = _copy(ext_repo, repo, "unreadable")
    with open(unreadable / "model.onnx.data", "r+b") as fh:
        fh.truncate(1000)
    manifest = _manifest(unreadable)
    manifest["graph"]["external_data"]["bytes"] = 1000
    (unreadable / "manifest.json").write_text(json.dumps(manifest))
    # The same size, other bytes: the load-time self check refuses it.
    altered = _copy(ext_repo, repo, "altered")
    weights = bytearray((altered / "model.onnx.data").read_bytes())
    weights[: len(weights) // 2] = bytes(len(weights) // 2)
    (altered / "model.onnx.data").write_bytes(bytes(weights))
    server = ServerProcess(repo)
    try:
        with Client(server.target) as client:
            assert client.encode("good", ["still served"]).shape[0] == 1
        log = server.output()
    finally:
        server.stop()
    assert f"{missing / 'model.onnx.data'}: missing (named in {missing / 'manifest.json'})" in log
    assert f"{truncated / 'model.onnx.data'}: 1000 bytes, {truncated / 'manifest.json'} says" in log
    assert f"{unreadable / 'model.onnx'} (with its weights model.onnx.data): onnxruntime cannot load it" in log
    assert "model altered skipped: model altered version 1: SELF CHECK FAILED" in log
    assert "Traceback" not in log


def test_hub_layout_without_its_data_file_is_one_line(sources: dict[str, Path], workdir: Path, tmp_path: Path) -> None:
    ckpt = workdir / "hub-layout" / "tiny-bert"  # built by ext_repo
    if not ckpt.is_dir():
        ckpt = hub_layout(sources["tiny-bert"], tmp_path / "tiny-bert")
    partial = tmp_path / "partial"
    shutil.copytree(ckpt, partial)
    (partial / "onnx" / "model.onnx_data").unlink()
    result = subprocess.run([*EMBEDRANK, "import", str(partial), "--output", str(tmp_path / "repo" / "x")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert "external data in model.onnx_data, which is missing beside it" in last, last


def test_the_limit_decides(ext_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """auto: one file below the limit, external data past it; never: refused past it, naming the flag."""
    src = tmp_path / "src" / "model.onnx"
    src.parent.mkdir()
    shutil.copy(ext_repo / "imported-auto" / "1" / "model.onnx", src)
    size = graphfile.graph_bytes(src)
    monkeypatch.setattr(graphfile, "LIMIT", size - 1)
    with pytest.raises(ConfigError) as refused:
        graphfile.publish_graph(src, tmp_path, ExternalData.NEVER)
    assert "--external-data never cannot write it: use --external-data auto" in refused.value.message
    record = graphfile.publish_graph(src, tmp_path, ExternalData.AUTO)
    assert record == {"file": "model.onnx.data", "bytes": (tmp_path / "model.onnx.data").stat().st_size}
    assert (tmp_path / "model.onnx").stat().st_size < 64_000
    monkeypatch.setattr(graphfile, "LIMIT", 2**31)
    back = tmp_path / "again"
    back.mkdir()
    assert graphfile.publish_graph(tmp_path / "model.onnx", back, ExternalData.AUTO) is None  # one file again
    assert sorted(p.name for p in back.iterdir()) == ["model.onnx"]


def test_never_refuses_fp32_weights_past_the_limit_before_tracing() -> None:
    from embedrank.exporter.options import ExportOptions
    from embedrank.exporter.pipeline import check_one_file

    opts = ExportOptions(source="big", output=Path("repo/big"), external_data=ExternalData.NEVER, precision="fp32")
    with pytest.raises(ConfigError) as refused:
        check_one_file(opts, graphfile.LIMIT, "big: its weights")
    assert refused.value.message.startswith("big: its weights is 2.13 GB, past protobuf's 2 GiB limit")
    check_one_file(opts, graphfile.LIMIT - 1, "big: its weights")  # under the limit: one file is fine
    check_one_file(dataclasses.replace(opts, precision="int8"), graphfile.LIMIT, "big")  # int8 may shrink under it
    check_one_file(dataclasses.replace(opts, external_data=ExternalData.AUTO), graphfile.LIMIT, "big")
