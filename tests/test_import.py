"""`embedrank import` without torch (issue #36 item 2): a checkpoint's own ONNX graph of its transformer,
Pooling/Dense/Normalize appended, served equal to the torch export."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from embedrank.client import Client
from embedrank.exporter import corpus
from embedrank.exporter.verify import kendall_tau
from tests import checkpoints
from tests.conftest import EMBEDRANK, ServerProcess

ROOT = Path(__file__).resolve().parents[1]
TEXTS = corpus.parity_texts() + corpus.sentences(40)[20:]


@pytest.fixture(scope="session")
def import_python() -> str:
    """The interpreter of `pip install -e '.[import]'` (tests/import_venv.sh: cached in .cache/venv-import)."""
    result = subprocess.run(["bash", str(ROOT / "tests" / "import_venv.sh")], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"building the torch-free venv failed:\n{result.stderr[-3000:]}"
    python = ROOT / result.stdout.split()[0] / "bin" / "python"
    no_torch = subprocess.run([str(python), "-c", "import torch"], capture_output=True, text=True)
    assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr
    return str(python)


@pytest.fixture(scope="session")
def onnx_checkpoints(workdir: Path, sources: dict[str, Path]) -> dict[str, Path]:
    out = workdir / "onnx-checkpoints"
    out.mkdir()
    return {"minilm": checkpoints.with_onnx_graph(sources["minilm"], out / "minilm"),
            "minilm-rerank": checkpoints.with_onnx_graph(sources["minilm-rerank"], out / "minilm-rerank", rerank=True)}


@pytest.mark.slow
def test_import_without_torch_serves_what_export_serves(
    import_python: str, onnx_checkpoints: dict[str, Path], workdir: Path, target: str,
) -> None:
    repo = workdir / "imported"
    # `embedrank import` on its own (the reranker) ...
    result = subprocess.run(
        [import_python, "-m", "embedrank.cli", "import", str(onnx_checkpoints["minilm-rerank"]), "--output",
         str(repo / "minilm-rerank"), "--corpus-size", "200"], capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "imported" in result.stdout and "appending nothing" in result.stderr
    # ... and through `serve --model`, which imports where torch is absent and a graph is there.
    server = ServerProcess(repo, "--model", f"minilm={onnx_checkpoints['minilm']}", python=import_python, start_s=900)
    try:
        out = server.output()
        assert "model minilm: importing" in out and "[2/6] appending Pooling mean, Normalize" in out, out[-3000:]
        queries, docs = corpus.sentences(4), corpus.sentences(30)[10:22]
        with Client(server.target) as imported, Client(target) as exported:
            a, b = imported.encode("minilm", TEXTS), exported.encode("minilm", TEXTS)
            cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
            assert float(cos.min()) >= 0.99999
            for query in queries:
                got = {h.index: h.score for h in imported.rerank("minilm-rerank", query, docs)}
                want = {h.index: h.score for h in exported.rerank("minilm-rerank", query, docs)}
                assert max(abs(got[i] - want[i]) for i in want) <= 1e-4
    finally:
        server.stop()
    manifest = (repo / "minilm" / "1" / "manifest.json").read_text()
    assert "the checkpoint's own ONNX graph" in manifest and '"key"' in manifest


def test_serve_model_without_torch_or_graph_names_the_install(import_python: str, tmp_path: Path, sources: dict[str, Path]) -> None:
    result = subprocess.run(
        [import_python, "-m", "embedrank.cli", "serve", "--model-repository", str(tmp_path / "repo"), "--port", "0",
         "--model", f"tiny={sources['tiny-bert']}"], capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert "ships no ONNX graph" in last and "pip install '.[export]'" in last, last
    assert "Traceback" not in result.stderr


def test_import_of_a_folder_without_graph_is_one_line(tmp_path: Path, sources: dict[str, Path]) -> None:
    result = subprocess.run([*EMBEDRANK, "import", str(sources["tiny-bert"]), "--output", str(tmp_path / "r" / "m")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("embedrank import: ") and "no ONNX graph of the transformer" in last
    assert "pip install '.[export]'" in last and "Traceback" not in result.stderr


def test_unknown_variant_lists_those_there(tmp_path: Path, onnx_checkpoints: dict[str, Path]) -> None:
    result = subprocess.run([*EMBEDRANK, "import", str(onnx_checkpoints["minilm"]), "--variant", "O9",
                             "--output", str(tmp_path / "r" / "m")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "--variant O9: no model_O9.onnx" in result.stderr


def test_kendall_tau_equals_scipys() -> None:
    from scipy.stats import kendalltau

    rng = np.random.default_rng(0)
    for _ in range(100):
        n = int(rng.integers(2, 15))
        a, b = rng.integers(0, 4, n).astype(float), np.round(rng.normal(size=n), int(rng.integers(0, 2)))
        want, got = kendalltau(a, b).statistic, kendall_tau(a, b)
        assert (np.isnan(want) and np.isnan(got)) or abs(want - got) < 1e-12


@pytest.mark.parametrize("name", ["tiny-mpnet", "tiny-xlmr"])  # cls + Dense(tanh) + Normalize; max, no Normalize
def test_imported_modules_match_sentence_transformers(name: str, sources: dict[str, Path], tmp_path: Path) -> None:
    import json

    from sentence_transformers import SentenceTransformer

    from embedrank.exporter.graphrun import GraphRunner

    ckpt = checkpoints.with_onnx_graph(sources[name], tmp_path / name)
    result = subprocess.run([*EMBEDRANK, "import", str(ckpt), "--output", str(tmp_path / "repo" / name),
                             "--corpus-size", "40"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    version = tmp_path / "repo" / name / "1"
    manifest = json.loads((version / "manifest.json").read_text())
    runner = GraphRunner(version / "model.onnx", version / "tokenizer.json", max_tokens=manifest["tokenizer"]["max_tokens"],
                         pad_token_id=manifest["tokenizer"]["pad_token_id"], inputs=manifest["graph"]["inputs"],
                         precision="fp32")
    got = runner.run(TEXTS, "sentence_embedding")
    ref = SentenceTransformer(str(sources[name]), device="cpu").encode(TEXTS, convert_to_numpy=True)
    cos = (got * ref).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1))
    assert float(cos.min()) >= 0.99999
    assert np.abs(got - ref).max() < 1e-4
