"""Sparse (SPLADE) models: export of a SparseEncoder and of a plain masked LM, serving through
SparseEmbed, parity with SparseEncoder.encode through the Python client, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import numpy as np
import pytest

from embedrank.client import AsyncClient, Client, EmbedRankError, to_scipy
from embedrank.exporter import corpus
from embedrank.v1 import sparse_pb2, sparse_pb2_grpc
from tests.conftest import ServerProcess, export

TEXTS = ["Hello world", "What is the capital of France?", *corpus.sentences(6), " ".join(corpus.paragraphs()[:6])]


def _encoder(path: Path):  # type: ignore[no-untyped-def]
    from sentence_transformers import SparseEncoder

    return SparseEncoder(str(path), device="cpu")


def _dense(emb) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.asarray(emb.to_dense().cpu().numpy(), dtype=np.float32)


def _assert_same(got, ref: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    for vec, row in zip(got, ref):
        idx = np.flatnonzero(row)
        assert sorted(vec.indices.tolist()) == idx.tolist()
        np.testing.assert_allclose(vec.values, row[vec.indices], rtol=1e-4, atol=1e-6)
        assert list(vec.values) == sorted(vec.values, reverse=True)


def test_manifest_records_the_pooling_and_parity(kinds_repo: Path) -> None:
    manifest = json.loads((kinds_repo / "tiny-sparse" / "1" / "manifest.json").read_text())
    assert manifest["kind"] == "sparse"
    assert manifest["sparse"]["pooling"] == "max" and manifest["sparse"]["activation"] == "relu"
    assert manifest["sparse"]["max_active_dims"] == 100
    assert manifest["sparse"]["dimensions"] == 30522
    parity = manifest["fidelity"]["parity"]
    assert parity["index_agreement"] == 1.0 and parity["max_rel_diff"] <= 1e-4
    assert manifest["self_check"]["gate"] == {"min_index_agreement": 1.0, "max_rel_diff": 1e-4}


def test_matches_sparse_encoder(kinds_server: ServerProcess, kinds_sources: dict[str, Path]) -> None:
    model = _encoder(kinds_sources["tiny-sparse"])
    with Client(kinds_server.target) as client:
        got = client.encode_sparse("tiny-sparse", TEXTS)
        queries = client.encode_sparse("tiny-sparse", TEXTS[:3], input_type="query")
    _assert_same(got, _dense(model.encode(TEXTS)))
    # The query side: the model's "query: " prompt, as encode_query.
    _assert_same(queries, _dense(model.encode_query(TEXTS[:3])))
    assert any(not np.array_equal(q.indices, g.indices) for q, g in zip(queries, got[:3]))
    assert all(0 < v.indices.size <= 100 for v in got)  # max_active_dims


def test_top_k_tokens_and_scipy(kinds_server: ServerProcess, kinds_sources: dict[str, Path]) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(kinds_sources["tiny-sparse"]))
    with Client(kinds_server.target) as client:
        full = client.encode_sparse("tiny-sparse", TEXTS)
        top = client.encode_sparse("tiny-sparse", TEXTS, top_k=5, return_tokens=True)
    for f, t in zip(full, top):
        assert t.indices.tolist() == f.indices[:5].tolist()
        np.testing.assert_array_equal(t.values, f.values[:5])
        assert t.tokens == tok.convert_ids_to_tokens(t.indices.tolist())
        assert f.tokens is None
    matrix = to_scipy(full)
    assert matrix.shape == (len(TEXTS), 30522)
    ref = _dense(_encoder(kinds_sources["tiny-sparse"]).encode(TEXTS))
    np.testing.assert_allclose(matrix.toarray(), ref, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(full[0].to_scipy().toarray()[0], ref[0], rtol=1e-4, atol=1e-6)


def test_batched_equals_single(kinds_server: ServerProcess) -> None:
    with Client(kinds_server.target) as client:
        batched = client.encode_sparse("tiny-sparse", TEXTS)
        single = [client.encode_sparse("tiny-sparse", [t])[0] for t in TEXTS]
    for b, s in zip(batched, single):
        assert b.indices.tolist() == s.indices.tolist()
        np.testing.assert_allclose(b.values, s.values, rtol=1e-5)


async def test_async_client_and_stream(kinds_server: ServerProcess) -> None:
    async with AsyncClient(kinds_server.target) as client:
        got = await client.encode_sparse("tiny-sparse", TEXTS[:2], top_k=3)
        info = await client.get_model("tiny-sparse")
    assert [v.indices.size for v in got] == [3, 3]
    assert info.kind == "sparse" and info.max_active_dims == 100 and info.sparse_pooling == "max"
    assert info.dimensions == 30522 and info.similarity_fn == "dot"
    requests = [
        sparse_pb2.EncodeSparseStreamRequest(id="a", request=sparse_pb2.EncodeSparseRequest(model="tiny-sparse", texts=["x"])),
        sparse_pb2.EncodeSparseStreamRequest(id="b", request=sparse_pb2.EncodeSparseRequest(model="tiny-sparse", texts=["y"], top_k=-1)),
        sparse_pb2.EncodeSparseStreamRequest(id="c", request=sparse_pb2.EncodeSparseRequest(model="tiny-sparse", texts=["z"], top_k=2)),
    ]
    with grpc.insecure_channel(kinds_server.target) as channel:
        answers = list(sparse_pb2_grpc.SparseEmbedStub(channel).EncodeSparseStream(iter(requests), timeout=30))
    assert [a.id for a in answers] == ["a", "b", "c"]
    assert answers[1].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0] and answers[1].error.field == "top_k"
    assert len(answers[2].response.vectors[0].indices) == 2 and answers[2].response.metadata.tokens > 0


def test_bad_inputs(kinds_server: ServerProcess) -> None:
    with Client(kinds_server.target) as client:
        with pytest.raises(EmbedRankError) as err:
            client.encode_sparse("tiny-sparse", ["a"], top_k=-1)
        assert err.value.code is grpc.StatusCode.INVALID_ARGUMENT and "top_k" in str(err.value)
        with pytest.raises(EmbedRankError) as err:
            client.encode_sparse("tiny-sparse", [" "])
        assert err.value.code is grpc.StatusCode.INVALID_ARGUMENT and "texts[0]" in str(err.value)
        with pytest.raises(EmbedRankError) as err:
            client.encode("tiny-sparse", ["a"])
        assert err.value.code is grpc.StatusCode.FAILED_PRECONDITION and "SparseEmbed.EncodeSparse" in str(err.value)
        with pytest.raises(EmbedRankError) as err:
            client.encode_sparse("tiny-bert", ["a"])
        assert err.value.code is grpc.StatusCode.FAILED_PRECONDITION and "Embed.Encode" in str(err.value)
        with pytest.raises(EmbedRankError) as err:
            client.rerank("tiny-sparse", "q", ["d"])
        assert err.value.code is grpc.StatusCode.FAILED_PRECONDITION and "SparseEmbed.EncodeSparse" in str(err.value)
        with pytest.raises(EmbedRankError) as err:
            client.encode_sparse("nope", ["a"])
        assert err.value.code is grpc.StatusCode.NOT_FOUND


def test_plain_masked_lm_exports_with_kind_sparse(workdir: Path, kinds_sources: dict[str, Path]) -> None:
    repo = workdir / "mlm-repo"
    result = export(kinds_sources["tiny-mlm-hf"], repo / "mlm", "--kind", "sparse")
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((repo / "mlm" / "1" / "manifest.json").read_text())
    assert manifest["kind"] == "sparse" and manifest["sparse"]["max_active_dims"] is None
    assert manifest["fidelity"]["parity"]["index_agreement"] == 1.0


def _sparse_cosine(vec, row: np.ndarray) -> float:  # type: ignore[no-untyped-def]
    served = np.zeros_like(row)
    served[vec.indices] = vec.values
    return float(served @ row / (np.linalg.norm(served) * np.linalg.norm(row)))


def test_int8_sparse_export_is_gated_and_served(workdir: Path, kinds_sources: dict[str, Path]) -> None:
    """--quantize avx2: the export measures cosine and top-10 term recall against SparseEncoder (the
    exact same-indices gate cannot hold once weights near zero move), records them, and the server
    loads it (its self check under the same gate) and serves vectors close to the library's."""
    repo = workdir / "sparse-int8-repo"
    result = export(kinds_sources["tiny-sparse"], repo / "s8", "--quantize", "avx2")
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((repo / "s8" / "1" / "manifest.json").read_text())
    assert manifest["graph"]["precision"] == "int8" and manifest["graph"]["quantize"] == "avx2"
    fidelity = manifest["fidelity"]
    limits = {"min_mean_cosine": 0.98, "min_cosine": 0.9, "min_mean_topk_recall": 0.9, "min_topk_recall": 0.6}
    assert fidelity["thresholds"] == limits and manifest["self_check"]["gate"] == limits
    for part in ("parity", "fidelity"):
        figures = fidelity[part]
        assert figures["mean_cosine"] >= 0.98 and figures["min_cosine"] >= 0.9, figures
        assert figures["topk"] == 10 and figures["topk_recall"] >= 0.9 and figures["min_topk_recall"] >= 0.6, figures
        assert figures["mean_cosine"] < 0.99999  # it is lossy: the figures measure something
    assert fidelity["fidelity"]["items"] == 200
    ref = _dense(_encoder(kinds_sources["tiny-sparse"]).encode(TEXTS))
    proc = ServerProcess(repo)
    try:
        with Client(proc.target) as client:
            got = client.encode_sparse("s8", TEXTS)
    finally:
        proc.stop()
    assert "self check passed" in proc.output()
    cosines = [_sparse_cosine(v, r) for v, r in zip(got, ref)]
    assert float(np.mean(cosines)) >= 0.98 and min(cosines) >= 0.9, cosines
    for vec, row in zip(got, ref):
        top_ref = set(np.argsort(-row, kind="stable")[:10].tolist())
        assert len(top_ref & set(vec.indices[:10].tolist())) >= 6
        assert 0 < vec.indices.size <= 100


def test_lossy_sparse_export_below_the_gate_is_refused(workdir: Path, kinds_sources: dict[str, Path]) -> None:
    result = export(kinds_sources["tiny-sparse"], workdir / "lossy-repo" / "s", "--quantize", "avx2",
                    "--min-cosine", "0.9999")
    assert result.returncode != 0
    assert "mean cosine" in result.stderr and "< 0.9999" in result.stderr, result.stderr[-2000:]
    assert not (workdir / "lossy-repo" / "s").exists()


def test_self_check_refuses_a_model_whose_cut_changed(workdir: Path, kinds_repo: Path) -> None:
    """An edited manifest (max_active_dims 50 where the model keeps 100) changes the served vectors:
    the load-time self check sees other non-zero indices than the recorded reference and refuses it."""
    import shutil

    repo = workdir / "sparse-edited"
    shutil.copytree(kinds_repo / "tiny-sparse", repo / "tiny-sparse")
    path = repo / "tiny-sparse" / "1" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["sparse"]["max_active_dims"] = 50
    path.write_text(json.dumps(manifest))
    with pytest.raises(RuntimeError) as err:
        ServerProcess(repo).stop()
    assert "SELF CHECK FAILED" in str(err.value) and "same non-zero indices in 0.000" in str(err.value)
