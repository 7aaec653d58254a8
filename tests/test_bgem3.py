"""BGE-M3 (issue 35): a tiny random checkpoint in BGE-M3's layout (XLM-R weights, sparse_linear.pt,
colbert_linear.pt and the sentence-transformers files) exported as one graph with three outputs and
served by every RPC that reads one of them, against FlagEmbedding's own BGEM3FlagModel: encode()'s
dense vectors, lexical weights and ColBERT vectors, and compute_score()'s scores."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest

from embedrank.client import Client, EmbedRankError
from embedrank.exporter import corpus
from embedrank.v1 import hybrid_pb2, hybrid_pb2_grpc
from tests.conftest import ServerProcess, edited_copy

MAX = 48  # the tiny checkpoint's max_seq_length
TEXTS = [*corpus.parity_texts()[:6], corpus.parity_texts()[-3], "Ünïcödé, emoji 🙂 and CJK 漢字 mixed in one line."]
QUERY = "How do I define a function?"
DOCS = [*corpus.sentences(12)[::2], corpus.paragraphs()[3], "def"]


@pytest.fixture(scope="module")
def source(bgem3_source: Path) -> Path:
    return bgem3_source


@pytest.fixture(scope="module")
def bgem3_repo(workdir: Path, bgem3_export: Path, tiny_repo: Path) -> Path:
    """The exported tiny BGE-M3 (conftest's), beside a copy of tiny-bert (for the wrong-kind calls)."""
    repo = workdir / "bgem3-repo"
    shutil.copytree(bgem3_export, repo / "bge-m3")
    shutil.copytree(tiny_repo / "tiny-bert", repo / "tiny-bert")
    return repo


@pytest.fixture(scope="module")
def server(bgem3_repo: Path) -> Iterator[ServerProcess]:
    with ServerProcess(bgem3_repo, "--http-port", "0", "--metrics-port", "0") as proc:
        yield proc


@pytest.fixture(scope="module")
def flag(source: Path) -> Any:
    from FlagEmbedding import BGEM3FlagModel

    return BGEM3FlagModel(str(source), use_fp16=False, devices="cpu")


def _http(proc: ServerProcess) -> str:
    found = re.search(r"HTTP listening on http://[\d.]+:(\d+)", proc.output())
    assert found, proc.output()[-3000:]
    return f"http://127.0.0.1:{found.group(1)}"


def _reference(flag: Any, texts: list[str]) -> dict[str, Any]:
    return flag.encode(texts, max_length=MAX, return_dense=True, return_sparse=True, return_colbert_vecs=True)


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def test_export_recognises_the_layout_and_records_the_gate(bgem3_repo: Path) -> None:
    manifest = json.loads((bgem3_repo / "bge-m3" / "1" / "manifest.json").read_text())
    assert manifest["kind"] == "hybrid"
    assert manifest["graph"]["outputs"] == ["dense_embedding", "token_weights", "colbert_vectors"]
    section = manifest["hybrid"]
    assert section["dimensions"] == section["colbert_dimensions"] == 32
    assert section["unused_token_ids"] == [0, 1, 2, 3]  # <s>, <pad>, </s>, <unk>: cls, pad, eos, unk
    fidelity = manifest["fidelity"]
    assert fidelity["reference_library"].startswith("FlagEmbedding ")
    parity = fidelity["parity"]
    assert parity["min_cosine"] >= 0.99999 and parity["min_token_cosine"] >= 0.99999
    assert parity["index_agreement"] == 1.0 and parity["max_rel_diff"] <= 1e-4 and parity["count_mismatch"] == 0
    assert fidelity["scores"]["pairs"] == 30 and max(fidelity["scores"]["max_abs_diff"].values()) <= 1e-4
    assert manifest["self_check"]["gate"]["min_token_cosine"] == 0.99999


def test_three_outputs_match_flagembedding(server: ServerProcess, flag: Any) -> None:
    ref = _reference(flag, TEXTS)
    with Client(server.target) as client:
        got = client.encode_hybrid("bge-m3", TEXTS, return_tokens=True)
    assert got.dense is not None and got.sparse is not None and got.multi_vector is not None
    assert _cos(got.dense, ref["dense_vecs"]).min() >= 0.99999
    for i, (weights, vectors) in enumerate(zip(ref["lexical_weights"], ref["colbert_vecs"])):
        sparse = got.sparse[i]
        assert sorted(int(k) for k in weights) == sorted(sparse.indices.tolist()), TEXTS[i]
        expected = np.array([weights[str(j)] for j in sparse.indices])
        assert np.abs(sparse.values - expected).max(initial=0.0) <= 1e-4 * expected.max(initial=0.0)
        assert list(sparse.values) == sorted(sparse.values, reverse=True)
        assert sparse.tokens == [flag.tokenizer.convert_ids_to_tokens(int(j)) for j in sparse.indices]
        assert got.multi_vector[i].shape == vectors.shape  # one per token after the first
        assert _cos(got.multi_vector[i], vectors).min() >= 0.99999
    assert got.token_counts[TEXTS.index(corpus.parity_texts()[-3])] == MAX  # a long text, cut


def test_every_rpc_reads_the_same_run(server: ServerProcess) -> None:
    """Encode, EncodeSparse and EncodeMultiVector on the model return its hybrid outputs; one
    EncodeHybrid runs each text once (the inputs counter), and batched equals single."""
    with Client(server.target) as client:
        before = _inputs_run(server)
        both = client.encode_hybrid("bge-m3", TEXTS)
        assert _inputs_run(server) - before == len(TEXTS)
        assert both.dense is not None and both.sparse is not None and both.multi_vector is not None
        np.testing.assert_allclose(client.encode("bge-m3", TEXTS), both.dense, atol=1e-6)
        for a, b in zip(client.encode_sparse("bge-m3", TEXTS), both.sparse):
            assert a.indices.tolist() == b.indices.tolist()
            np.testing.assert_allclose(a.values, b.values, atol=1e-6)
        for a, b in zip(client.encode_multi_vector("bge-m3", TEXTS), both.multi_vector):
            np.testing.assert_allclose(a, b, atol=1e-6)
        for i, text in enumerate(TEXTS[:3]):
            one = client.encode_hybrid("bge-m3", [text])
            assert one.dense is not None and one.multi_vector is not None and one.sparse is not None
            np.testing.assert_allclose(one.dense[0], both.dense[i], atol=1e-5)
            np.testing.assert_allclose(one.multi_vector[0], both.multi_vector[i], atol=1e-5)
            assert one.sparse[0].indices.tolist() == both.sparse[i].indices.tolist()
        some = client.encode_hybrid("bge-m3", TEXTS[:2], outputs=["sparse"], sparse_top_k=2)
        assert some.dense is None and some.multi_vector is None and some.sparse is not None
        assert [s.indices.tolist() for s in some.sparse] == [s.indices[:2].tolist() for s in both.sparse[:2]]
        bits = client.encode_hybrid("bge-m3", TEXTS[:2], outputs=["dense"], precision="ubinary")
        assert bits.dense is not None and bits.dense.dtype == np.uint8
        np.testing.assert_array_equal(bits.dense, np.packbits(both.dense[:2] > 0, axis=-1))
        info = {m.name: m for m in client.list_models()}["bge-m3"]
        assert info.kind == "hybrid" and info.dimensions == 32


def _inputs_run(proc: ServerProcess) -> float:
    found = re.search(r'embedrank_inputs_total\{kind="hybrid",model="bge-m3"\} ([\d.e+]+)', proc.metrics())
    return float(found.group(1)) if found else 0.0


def test_stream_keeps_order_and_carries_timing(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.target) as channel:
        stub = hybrid_pb2_grpc.HybridEmbedStub(channel)
        requests = [hybrid_pb2.EncodeHybridStreamRequest(id=str(i), request=hybrid_pb2.EncodeHybridRequest(
            model="bge-m3", texts=[text])) for i, text in enumerate(TEXTS)]
        requests.insert(2, hybrid_pb2.EncodeHybridStreamRequest(id="bad", request=hybrid_pb2.EncodeHybridRequest(
            model="bge-m3", texts=[""])))
        answers = list(stub.EncodeHybridStream(iter(requests), timeout=60))
    assert [a.id for a in answers] == [r.id for r in requests]
    bad = answers[2]
    assert bad.WhichOneof("result") == "error" and bad.error.field == "texts[0]"
    ok = answers[0].response
    assert ok.dense.rows == 1 and len(ok.sparse) == 1 and ok.vector_counts[0] == ok.token_counts[0] - 1
    timing = ok.metadata.timing
    assert timing.inference_ns > 0 and timing.total_ns >= timing.inference_ns and ok.metadata.model == "bge-m3"


def test_rerank_is_compute_score(server: ServerProcess, flag: Any) -> None:
    pairs = [(QUERY, d) for d in DOCS]
    ref = {}
    for weights in (None, [0.4, 0.2, 0.4]):
        per_pair = [flag.compute_score([p], batch_size=2, max_query_length=MAX, max_passage_length=MAX,
                                       weights_for_different_modes=weights) for p in pairs]
        ref[str(weights)] = {k: np.array([s[k][0] for s in per_pair]) for k in per_pair[0]}
    names = {"weighted": "colbert+sparse+dense", "dense": "dense", "sparse": "sparse", "colbert": "colbert",
             "sparse+dense": "sparse+dense"}
    with Client(server.target) as client:
        for score, key in names.items():
            for weights in (None, [0.4, 0.2, 0.4]):
                hits = client.rerank("bge-m3", QUERY, DOCS, hybrid_score=score, hybrid_weights=weights)
                expected = ref[str(weights)][key]
                got = np.zeros(len(DOCS))
                for hit in hits:
                    got[hit.index] = hit.score
                    assert hit.hybrid_scores is not None and hit.hybrid_scores[score] == pytest.approx(hit.score)
                assert np.abs(got - expected).max() <= 1e-4, (score, weights)
                assert [h.index for h in hits] == list(np.argsort(-got, kind="stable"))
        default = client.rerank("bge-m3", QUERY, DOCS, top_k=3)
        assert len(default) == 3 and default[0].score == pytest.approx(ref["None"]["colbert+sparse+dense"].max(), abs=1e-4)


def test_http_routes(server: ServerProcess) -> None:
    base = _http(server)
    with Client(server.target) as client, httpx.Client(base_url=base, timeout=60) as http:
        grpc_out = client.encode_hybrid("bge-m3", TEXTS[:3], return_tokens=True)
        answer = http.post("/v1/hybrid", json={"model": "bge-m3", "input": TEXTS[:3], "return_tokens": True})
        assert answer.status_code == 200, answer.text
        data = answer.json()["data"]
        assert grpc_out.dense is not None and grpc_out.sparse is not None and grpc_out.multi_vector is not None
        for i, item in enumerate(data):
            np.testing.assert_array_equal(np.array(item["dense"], dtype=np.float32), grpc_out.dense[i])
            assert item["sparse"]["indices"] == grpc_out.sparse[i].indices.tolist()
            assert item["sparse"]["tokens"] == grpc_out.sparse[i].tokens
            np.testing.assert_array_equal(np.array(item["multi_vector"], dtype=np.float32), grpc_out.multi_vector[i])
        only = http.post("/v1/hybrid", json={"model": "bge-m3", "input": "one text", "outputs": ["dense"]}).json()
        assert set(only["data"][0]) == {"object", "index", "token_count", "dense"}
        embeddings = http.post("/v1/embeddings", json={"model": "bge-m3", "input": TEXTS[:3]}).json()
        np.testing.assert_array_equal(np.array([d["embedding"] for d in embeddings["data"]], dtype=np.float32),
                                      grpc_out.dense)
        hits = client.rerank("bge-m3", QUERY, DOCS, hybrid_score="sparse")
        reranked = http.post("/v1/rerank", json={"model": "bge-m3", "query": QUERY, "documents": DOCS,
                                                 "hybrid_score": "sparse"}).json()["results"]
        assert [r["index"] for r in reranked] == [h.index for h in hits]
        assert reranked[0]["hybrid_scores"]["sparse"] == pytest.approx(hits[0].score)
        for body, status, param in (
            ({"model": "bge-m3", "input": ["a"], "outputs": ["tokens"]}, 400, "outputs[0]"),
            ({"model": "bge-m3", "input": ["a"], "outputs": []}, 400, "outputs"),
            ({"model": "bge-m3", "input": [""]}, 400, "input[0]"),
            ({"model": "bge-m3", "input": ["a"], "sparse_top_k": -1}, 400, "sparse_top_k"),
            ({"model": "tiny-bert", "input": ["a"]}, 400, "model"),
        ):
            bad = http.post("/v1/hybrid", json=body)
            assert bad.status_code == status or (param == "model" and bad.status_code == 412), bad.text
            assert bad.json()["error"]["param"] == param, bad.text
        wrong = http.post("/v1/rerank", json={"model": "bge-m3", "query": "q", "documents": ["d"],
                                              "hybrid_weights": [1, 2]})
        # /v1/rerank answers in Cohere's error shape: {"id", "message": "<field>: ..."}
        assert wrong.status_code == 400 and wrong.json()["message"].startswith("hybrid_weights:"), wrong.text


def test_bad_inputs(server: ServerProcess) -> None:
    with Client(server.target) as client:
        for call, code, field in (
            (lambda: client.encode_hybrid("tiny-bert", ["a"]), grpc.StatusCode.FAILED_PRECONDITION, "Embed.Encode"),
            (lambda: client.encode_hybrid("bge-m3", []), grpc.StatusCode.INVALID_ARGUMENT, "texts"),
            (lambda: client.encode_hybrid("bge-m3", ["a"], sparse_top_k=-1), grpc.StatusCode.INVALID_ARGUMENT,
             "sparse_top_k"),
            (lambda: client.encode_hybrid("bge-m3", ["a"], precision="int8"), grpc.StatusCode.FAILED_PRECONDITION,
             "int8"),
            (lambda: client.encode("bge-m3", ["a"], normalize=False), grpc.StatusCode.INVALID_ARGUMENT, "normalize"),
            (lambda: client.encode("bge-m3", ["a"], long_input="chunk"), grpc.StatusCode.INVALID_ARGUMENT,
             "long_input"),
            (lambda: client.encode_sparse("bge-m3", ["a"], top_k=-3), grpc.StatusCode.INVALID_ARGUMENT, "top_k"),
            (lambda: client.rerank("bge-m3", QUERY, DOCS, hybrid_weights=[1.0, 1.0]), grpc.StatusCode.INVALID_ARGUMENT,
             "hybrid_weights"),
            (lambda: client.rerank("bge-m3", QUERY, DOCS, hybrid_weights=[0, 0, 0]), grpc.StatusCode.INVALID_ARGUMENT,
             "hybrid_weights"),
            (lambda: client.rerank("bge-m3", "  ", DOCS), grpc.StatusCode.INVALID_ARGUMENT, "query"),
            (lambda: client.encode_hybrid("bge-m3", ["a"], prompt_name="nope"), grpc.StatusCode.INVALID_ARGUMENT,
             "prompt_name"),
        ):
            with pytest.raises(EmbedRankError) as err:
                call()
            assert err.value.code is code and field in str(err.value), str(err.value)


def test_self_check_refuses_an_edited_manifest(workdir: Path, bgem3_repo: Path) -> None:
    """The special tokens left in the lexical weights: the load-time self check sees other ids than
    FlagEmbedding's and refuses the model."""
    repo = edited_copy(bgem3_repo / "bge-m3", workdir / "bgem3-edited",
                       lambda m: m["hybrid"].__setitem__("unused_token_ids", [1]))
    with pytest.raises(RuntimeError) as err:
        ServerProcess(repo).stop()
    assert "SELF CHECK FAILED" in str(err.value) and "same non-zero indices" in str(err.value)
