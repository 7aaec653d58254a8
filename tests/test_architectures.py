"""The architecture matrix: every row exported with `embedrank export`, served by one server, and
compared with sentence-transformers through the Python client (tests/architectures.py has the rows).

The exports run in this process (`embedrank.cli.main`, the `embedrank` command's entry point):
a subprocess per row would spend ~10 s each importing torch; tests/test_export_failures.py runs the
command as a subprocess.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from embedrank.client import Client
from embedrank.exporter import corpus
from tests import architectures
from tests.architectures import BI_ENCODERS, RERANKERS, BiEncoder, Reranker
from tests.conftest import ServerProcess

pytestmark = pytest.mark.slow

TEXTS = corpus.parity_texts() + corpus.sentences(24)[12:]
QUERY = "How do I handle an exception raised inside a function?"
DOCS = corpus.sentences(40)[20:40] + [" ".join(corpus.paragraphs()[:4])]


def _export(source: Path, output: Path, optimize: str) -> tuple[int, str]:
    from embedrank.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["export", str(source), "--output", str(output), "--corpus-size", "20", "--optimize", optimize])
    return code, err.getvalue()


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[BiEncoder | Reranker, Path]]:
    out = tmp_path_factory.mktemp("arch-checkpoints")
    built: dict[str, tuple[BiEncoder | Reranker, Path]] = {}
    for row in BI_ENCODERS:
        built[row.name] = (row, architectures.build_bi_encoder(out, row))
    for rerank in RERANKERS:
        built[rerank.name] = (rerank, architectures.build_reranker(out, rerank))
    return built


@pytest.fixture(scope="module")
def matrix_repo(tmp_path_factory: pytest.TempPathFactory, matrix: dict[str, tuple[BiEncoder | Reranker, Path]]) -> Path:
    repo = tmp_path_factory.mktemp("arch-repo")
    failed = []
    for name, (row, source) in matrix.items():
        code, log = _export(source, repo / name, row.optimize)
        if code != 0:
            failed.append(f"{name} (exit {code}): {log[-1500:]}")
    assert not failed, "exports failed:\n" + "\n".join(failed)
    return repo


@pytest.fixture(scope="module")
def matrix_target(matrix_repo: Path) -> Iterator[str]:
    server = ServerProcess(matrix_repo, "--max-inputs-per-request", "256")
    yield server.target
    server.stop()


def _manifest(repo: Path, name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((repo / name / "1" / "manifest.json").read_text())  # type: ignore[no-any-return]


def _min_cos(a: np.ndarray, b: np.ndarray) -> float:
    num = (a.astype(np.float64) * b).sum(1)
    return float((num / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))).min())


def test_matrix_covers_the_architectures_and_pooling_modes() -> None:
    model_types = {row.model_type for row in BI_ENCODERS}
    assert len(model_types) >= 12
    modes = {mode for row in BI_ENCODERS for mode in row.pooling}
    assert modes == {"cls", "mean", "max", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"}
    assert any(len(row.pooling) > 1 for row in BI_ENCODERS)
    assert len({row.model_type for row in RERANKERS}) >= 4


@pytest.mark.parametrize("row", BI_ENCODERS, ids=lambda r: r.name)
def test_embedding_matches_sentence_transformers(
    row: BiEncoder, matrix: dict[str, tuple[BiEncoder | Reranker, Path]], matrix_repo: Path, matrix_target: str
) -> None:
    from sentence_transformers import SentenceTransformer

    manifest = _manifest(matrix_repo, row.name)
    assert manifest["source"]["model_type"] == row.model_type
    assert manifest["embedding"]["pooling"] == list(row.pooling)
    assert manifest["embedding"]["dense_layers"] == len(row.dense)
    assert manifest["fidelity"]["parity"]["min_cosine"] >= 0.99999
    reference = SentenceTransformer(str(matrix[row.name][1]), device="cpu")
    ref = reference.encode(TEXTS, convert_to_numpy=True)
    with Client(matrix_target) as client:
        got = client.encode(row.name, TEXTS)
    assert got.shape == ref.shape
    assert _min_cos(ref[:-1], ref[1:]) < 0.999  # texts embed apart: a graph that ignored its input would not pass
    assert _min_cos(got, ref) >= 0.99999
    assert np.abs(got - ref).max() < 1e-4


def test_gemma3_prompts_and_dense_layers(matrix: dict[str, tuple[BiEncoder | Reranker, Path]], matrix_target: str) -> None:
    """EmbeddingGemma's shape: bidirectional Gemma3, mean, two Dense layers, Normalize, a default prompt."""
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(matrix["gemma3"][1]), device="cpu")
    assert reference.default_prompt_name == "query"
    texts = TEXTS[:10]
    with Client(matrix_target) as client:
        info = client.get_model("gemma3")
        assert info.prompts["query"] == "task: search result | query: "
        for name in ("query", "document"):
            got = client.encode("gemma3", texts, prompt_name=name)
            assert _min_cos(got, reference.encode(texts, prompt_name=name)) >= 0.99999
        # No prompt asked for: the default prompt, as sentence-transformers applies it.
        got = client.encode("gemma3", texts)
        assert _min_cos(got, reference.encode(texts)) >= 0.99999
        # And the prompt matters: the bare texts embed differently.
        assert _min_cos(got, reference.encode(texts, prompt="")) < 0.999


@pytest.mark.parametrize("row", RERANKERS, ids=lambda r: r.name)
def test_reranker_matches_cross_encoder(
    row: Reranker, matrix: dict[str, tuple[BiEncoder | Reranker, Path]], matrix_repo: Path, matrix_target: str
) -> None:
    from sentence_transformers import CrossEncoder

    manifest = _manifest(matrix_repo, row.name)
    assert manifest["kind"] == "rerank"
    assert manifest["source"]["model_type"] == row.model_type
    reference = CrossEncoder(str(matrix[row.name][1]), device="cpu")
    ref = np.asarray(reference.predict([(QUERY, d) for d in DOCS]), dtype=np.float64)
    with Client(matrix_target) as client:
        hits = client.rerank(row.name, QUERY, DOCS)
    got = np.zeros(len(DOCS))
    for hit in hits:
        got[hit.index] = hit.score
    assert sorted(h.index for h in hits) == list(range(len(DOCS)))
    np.testing.assert_allclose(got, ref, atol=1e-4)
    assert np.ptp(ref) > 0.01  # scores spread out: a graph that ignored its input would not pass
