"""Multi-vector (ColBERT) models: export of a MultiVectorEncoder (Dense, skiplist, query
expansion), serving through MultiVectorEmbed, parity with MultiVectorEncoder.encode_query /
encode_document / encode, MaxSim Rerank equal to the library's scoring, Tokenize equal to what
EncodeMultiVector reads, bad inputs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from embedrank.client import AsyncClient, Client, EmbedRankError, _codec
from embedrank.exporter import corpus
from embedrank.v1 import embed_pb2
from tests.conftest import ServerProcess, edited_copy, export

TEXTS = ["Hello, world!", "What is the capital of France?", *corpus.sentences(6), " ".join(corpus.paragraphs()[:6])]
QUERY = "How do I handle an exception raised inside a function?"
DOCS = corpus.sentences(30)[10:30]


def _encoder(path: Path):  # type: ignore[no-untyped-def]
    from sentence_transformers import MultiVectorEncoder

    return MultiVectorEncoder(str(path), device="cpu")


def _assert_same(got: list[np.ndarray], ref: list[np.ndarray]) -> None:
    assert [g.shape for g in got] == [np.asarray(r).shape for r in ref]
    for g, r in zip(got, ref):
        r = np.asarray(r, dtype=np.float32)
        cos = (g * r).sum(1) / (np.linalg.norm(g, axis=1) * np.linalg.norm(r, axis=1))
        assert cos.min() >= 0.99999
        assert g.dtype == np.float32


def test_manifest_records_the_query_and_document_handling(kinds_repo: Path) -> None:
    manifest = json.loads((kinds_repo / "tiny-colbert" / "1" / "manifest.json").read_text())
    assert manifest["kind"] == "multi-vector"
    section = manifest["multi-vector"]
    assert section["dimensions"] == 16 and section["document_length"] == 40
    assert section["expansion"] == {"strategy": "fixed", "attend": False, "token_id": 103, "length": 12}
    assert len(section["skiplist_ids"]) > 20 and section["skiplist_tasks"] == ["document"]
    for side in ("query", "document", "encode"):
        assert manifest["fidelity"]["parity"][side]["count_mismatch"] == 0
        assert manifest["fidelity"]["parity"][side]["min_token_cosine"] >= 0.99999


def test_matches_multi_vector_encoder(kinds_server: ServerProcess, kinds_sources: dict[str, Path]) -> None:
    model = _encoder(kinds_sources["tiny-colbert"])
    with Client(kinds_server.target) as client:
        queries = client.encode_multi_vector("tiny-colbert", TEXTS, input_type="query")
        documents = client.encode_multi_vector("tiny-colbert", TEXTS, input_type="document")
        plain = client.encode_multi_vector("tiny-colbert", TEXTS)
    _assert_same(queries, model.encode_query(TEXTS, convert_to_numpy=True))
    _assert_same(documents, model.encode_document(TEXTS, convert_to_numpy=True))
    _assert_same(plain, model.encode(TEXTS, convert_to_numpy=True))
    assert {q.shape[0] for q in queries} == {12}  # every query expanded (or cut) to 12 tokens
    assert documents[0].shape[0] == 4  # [CLS] hello world [SEP]: the skiplist drops "," and "!"
    assert max(d.shape[0] for d in documents) <= 40  # document_length


def test_batched_equals_single(kinds_server: ServerProcess) -> None:
    with Client(kinds_server.target) as client:
        for input_type in ("query", "document"):
            batched = client.encode_multi_vector("tiny-colbert", TEXTS, input_type=input_type)
            single = [client.encode_multi_vector("tiny-colbert", [t], input_type=input_type)[0] for t in TEXTS]
            for b, s in zip(batched, single):
                np.testing.assert_allclose(b, s, atol=1e-5)


def test_rerank_is_the_library_maxsim(kinds_server: ServerProcess, kinds_sources: dict[str, Path]) -> None:
    model = _encoder(kinds_sources["tiny-colbert"])
    ref = model.similarity(model.encode_query([QUERY]), model.encode_document(DOCS)).numpy()[0]
    with Client(kinds_server.target) as client:
        hits = client.rerank("tiny-colbert", QUERY, DOCS, return_documents=True)
        top = client.rerank("tiny-colbert", QUERY, DOCS, top_k=3)
    assert sorted(h.index for h in hits) == list(range(len(DOCS)))
    np.testing.assert_allclose([h.score for h in hits], ref[[h.index for h in hits]], rtol=1e-5)
    assert [h.index for h in hits] == list(np.argsort(-ref, kind="stable"))
    assert all(h.document == DOCS[h.index] for h in hits)
    assert [h.index for h in top] == [h.index for h in hits[:3]]


async def test_async_client_and_model_info(kinds_server: ServerProcess) -> None:
    async with AsyncClient(kinds_server.target) as client:
        got = await client.encode_multi_vector("tiny-colbert", ["a query"], input_type="query")
        models = {m.name: m for m in await client.list_models()}
    assert got[0].shape == (12, 16)
    info = models["tiny-colbert"]
    assert info.kind == "multi-vector" and info.dimensions == 16 and info.similarity_fn == "maxsim" and info.normalize
    assert info.query_expansion_length == 12 and info.document_length == 40 and info.query_length == 0
    assert models["tiny-sparse"].kind == "sparse" and models["tiny-bert"].kind == "embedding"


def test_bad_inputs(kinds_server: ServerProcess) -> None:
    with Client(kinds_server.target) as client:
        with pytest.raises(EmbedRankError) as err:
            client.rerank("tiny-colbert", QUERY, DOCS, top_k=-2)
        assert err.value.code is grpc.StatusCode.INVALID_ARGUMENT and "top_k" in str(err.value)
        with pytest.raises(EmbedRankError) as err:
            client.rerank("tiny-colbert", QUERY, DOCS, long_input="chunk")
        assert err.value.code is grpc.StatusCode.INVALID_ARGUMENT and "long_input" in str(err.value)
        with pytest.raises(EmbedRankError) as err:
            client.encode_multi_vector("tiny-colbert", [])
        assert err.value.code is grpc.StatusCode.INVALID_ARGUMENT and "texts" in str(err.value)
        with pytest.raises(EmbedRankError) as err:
            client.encode("tiny-colbert", ["a"])
        assert err.value.code is grpc.StatusCode.FAILED_PRECONDITION
        assert "MultiVectorEmbed.EncodeMultiVector" in str(err.value)
        with pytest.raises(EmbedRankError) as err:
            client.encode_multi_vector("tiny-sparse", ["a"])
        assert err.value.code is grpc.StatusCode.FAILED_PRECONDITION and "SparseEmbed.EncodeSparse" in str(err.value)
        with pytest.raises(EmbedRankError) as err:
            client.encode_multi_vector("tiny-bert", ["a"], prompt_name="nope")
        assert err.value.code is grpc.StatusCode.FAILED_PRECONDITION and "Embed.Encode" in str(err.value)
        with pytest.raises(EmbedRankError) as err:
            client.encode_multi_vector("tiny-colbert", ["a"], prompt_name="nope")
        assert err.value.code is grpc.StatusCode.INVALID_ARGUMENT and "prompt_name" in str(err.value)


def test_self_check_refuses_a_model_whose_masks_changed(workdir: Path, kinds_repo: Path) -> None:
    """An edited manifest (the skiplist gone) changes what the server returns: the load-time self
    check sees other vector counts than the recorded reference and refuses the model."""
    repo = edited_copy(kinds_repo / "tiny-colbert", workdir / "colbert-edited",
                       lambda m: m["multi-vector"].__setitem__("skiplist_ids", []))
    with pytest.raises(RuntimeError) as err:
        ServerProcess(repo).stop()
    assert "SELF CHECK FAILED" in str(err.value) and "another token count" in str(err.value)


def _token_cosines(got: np.ndarray, ref: np.ndarray) -> np.ndarray:
    got = got.astype(np.float32)
    return (got * ref).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1))


def test_quantized_vectors_on_the_wire(kinds_server: ServerProcess, kinds_repo: Path) -> None:
    """precision as for Encode: int8/uint8 with the ranges calibrated at export over token vectors
    (the same quantize() as Encode's), binary/ubinary sign bits; fewer bytes, the same vector counts."""
    manifest = json.loads((kinds_repo / "tiny-colbert" / "1" / "manifest.json").read_text())
    ranges = manifest["multi-vector"]["ranges"]
    assert len(ranges["min"]) == len(ranges["max"]) == 16 and all(a < b for a, b in zip(ranges["min"], ranges["max"]))
    starts = np.asarray(ranges["min"], np.float32)
    steps = (np.asarray(ranges["max"], np.float32) - starts) / 255
    with Client(kinds_server.target) as client:
        for input_type in ("query", "document"):
            ref = client.encode_multi_vector("tiny-colbert", TEXTS, input_type=input_type)
            raw = client._call(client._multi_vector.EncodeMultiVector, _codec.multi_vector_request(
                "tiny-colbert", TEXTS, input_type=input_type))
            for precision, dtype, width in (("int8", np.int8, 16), ("uint8", np.uint8, 16), ("binary", np.int8, 2),
                                            ("ubinary", np.uint8, 2)):
                got = client.encode_multi_vector("tiny-colbert", TEXTS, input_type=input_type, precision=precision)
                assert [g.shape for g in got] == [(r.shape[0], width) for r in ref]
                assert all(g.dtype == dtype for g in got)
                if precision in ("int8", "uint8"):
                    for g, r in zip(got, ref):
                        # Dequantized (bucket middles), each token vector points where the float one does.
                        values = g.astype(np.float32) + (128 if precision == "int8" else 0)
                        assert _token_cosines(starts + (values + 0.5) * steps, r).min() > 0.99
                else:
                    for g, r in zip(got, ref):
                        bits = np.unpackbits((g.astype(np.int16) + (128 if precision == "binary" else 0)).astype(np.uint8), axis=1)
                        np.testing.assert_array_equal(bits[:, :16], (r > 0).astype(np.uint8))
            small = client._call(client._multi_vector.EncodeMultiVector, _codec.multi_vector_request(
                "tiny-colbert", TEXTS, input_type=input_type, precision="int8"))
            assert len(small.embeddings.data) * 4 == len(raw.embeddings.data)
            assert small.embeddings.precision == embed_pb2.PRECISION_INT8 and list(small.vector_counts) == list(raw.vector_counts)
        info = {m.name: m for m in client.list_models()}["tiny-colbert"]
        assert info.output_precisions == ("float32", "int8", "uint8", "binary", "ubinary")
        assert info.manifest["multi-vector"]["ranges_calibrated"] is True and "ranges" not in info.manifest["multi-vector"]


def test_int8_equals_encode_quantizer(kinds_server: ServerProcess, kinds_repo: Path) -> None:
    """The int8 rows are sentence_transformers.quantize_embeddings of the float rows with the manifest's ranges."""
    from sentence_transformers.quantization import quantize_embeddings

    ranges = json.loads((kinds_repo / "tiny-colbert" / "1" / "manifest.json").read_text())["multi-vector"]["ranges"]
    calibration = np.asarray([ranges["min"], ranges["max"]], np.float32)
    with Client(kinds_server.target) as client:
        floats = client.encode_multi_vector("tiny-colbert", TEXTS[:3], input_type="document")
        ints = client.encode_multi_vector("tiny-colbert", TEXTS[:3], input_type="document", precision="int8")
    for f, i in zip(floats, ints):
        want = quantize_embeddings(f, precision="int8", ranges=calibration)
        assert np.abs(want.astype(np.int16) - i).max() <= 1  # float32 rounding at a bucket edge


def test_bad_precision_names_the_field(kinds_server: ServerProcess, workdir: Path, kinds_repo: Path) -> None:
    with Client(kinds_server.target) as client:
        req = _codec.multi_vector_request("tiny-colbert", ["a"])
        req.precision = 42  # type: ignore[assignment]  # an enum value this server does not know
        with pytest.raises(EmbedRankError) as err:
            client._call(client._multi_vector.EncodeMultiVector, req)
        assert err.value.code is grpc.StatusCode.INVALID_ARGUMENT and err.value.field == "precision"
        assert str(err.value).startswith("INVALID_ARGUMENT: precision")
        with pytest.raises(ValueError, match="precision"):
            client.encode_multi_vector("tiny-colbert", ["a"], precision="int4")
    # A model exported before the ranges were calibrated: int8 is refused up front, binary still works.
    repo = edited_copy(kinds_repo / "tiny-colbert", workdir / "colbert-noranges",
                       lambda m: m["multi-vector"].pop("ranges"))
    proc = ServerProcess(repo)
    try:
        with Client(proc.target) as client:
            with pytest.raises(EmbedRankError) as err:
                client.encode_multi_vector("tiny-colbert", ["a"], precision="int8")
            assert err.value.code is grpc.StatusCode.FAILED_PRECONDITION and "calibration ranges" in err.value.message
            assert client.encode_multi_vector("tiny-colbert", ["a"], precision="ubinary")[0].shape[1] == 2
            assert {m.name: m for m in client.list_models()}["tiny-colbert"].output_precisions == ("float32", "binary", "ubinary")
    finally:
        assert proc.stop() == 0


def test_int8_export_is_gated_and_served_close_to_fp32(
    workdir: Path, kinds_sources: dict[str, Path], kinds_server: ServerProcess
) -> None:
    """--quantize on a multi-vector model: the gate (mean and worst token cosine against the library,
    MaxSim ranking agreement) is recorded in the manifest, the self check re-checks the cosines, and the
    served vectors stay close to the fp32 export's."""
    repo = workdir / "colbert-int8-repo"
    result = export(kinds_sources["tiny-colbert"], repo / "colbert-int8", "--quantize", "avx512-vnni")
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((repo / "colbert-int8" / "1" / "manifest.json").read_text())
    assert (manifest["graph"]["precision"], manifest["graph"]["quantize"]) == ("int8", "avx512-vnni")
    fidelity = manifest["fidelity"]
    assert fidelity["thresholds"] == {"min_mean_token_cosine": 0.98, "min_token_cosine": 0.9, "max_count_mismatch": 0.0,
                                      "min_maxsim_top1_agreement": 0.9, "min_maxsim_spearman": 0.95}
    ranking = fidelity["parity"]["ranking"]
    assert (ranking["queries"], ranking["documents"]) == (16, 47)
    assert ranking["top1_agreement"] >= 0.9 and ranking["mean_spearman"] >= 0.95
    assert 0 < ranking["max_rel_score_diff"] < 0.05  # int8 moved the scores, a little
    for side in ("query", "document", "encode"):
        p = fidelity["parity"][side]
        assert p["count_mismatch"] == 0 and p["mean_token_cosine"] >= 0.98 and p["min_token_cosine"] >= 0.9
        assert p["min_token_cosine"] < 0.99999  # lossy: not the exact graph's figure
    assert fidelity["fidelity"]["items"] == 200 and fidelity["fidelity"]["mean_token_cosine"] >= 0.98
    assert manifest["self_check"]["gate"] == {"min_mean_token_cosine": 0.98, "min_token_cosine": 0.9,
                                              "max_count_mismatch": 0.0}

    server = ServerProcess(repo)
    try:
        with Client(server.target) as int8, Client(kinds_server.target) as fp32:
            for input_type in ("query", "document"):
                got = int8.encode_multi_vector("colbert-int8", TEXTS, input_type=input_type)
                ref = fp32.encode_multi_vector("tiny-colbert", TEXTS, input_type=input_type)
                assert [g.shape for g in got] == [r.shape for r in ref]
                cos = np.concatenate([_token_cosines(g, r) for g, r in zip(got, ref)])
                assert cos.mean() >= 0.98 and cos.min() >= 0.9
            hits = int8.rerank("colbert-int8", QUERY, DOCS)
            ref_hits = fp32.rerank("tiny-colbert", QUERY, DOCS)
    finally:
        server.stop()
    assert hits[0].index == ref_hits[0].index
    order, ref_order = [h.index for h in hits], [h.index for h in ref_hits]
    assert np.corrcoef([order.index(i) for i in range(len(DOCS))], [ref_order.index(i) for i in range(len(DOCS))])[0, 1] > 0.9


def test_int8_export_past_its_gate_is_refused(workdir: Path, kinds_sources: dict[str, Path]) -> None:
    """The same int8 graph with a mean token cosine floor it cannot reach: refused, nothing written."""
    out = workdir / "colbert-int8-strict" / "m"
    result = export(kinds_sources["tiny-colbert"], out, "--quantize", "avx512-vnni", "--min-cosine", "0.9999999")
    assert result.returncode != 0
    assert "mean token cosine" in result.stderr and "< 0.9999999" in result.stderr, result.stderr[-2000:]
    assert not out.exists()


# Prompts the test model does not have (its own are ""), put in a copy's manifest: the load-time self
# check runs without prompts, so the copy loads; the library reference gets the same prompts.
PROMPTS = {"query": "query: ", "document": "passage: "}


@pytest.fixture(scope="module")
def prompted_server(workdir: Path, kinds_repo: Path) -> Iterator[ServerProcess]:
    repo = edited_copy(kinds_repo / "tiny-colbert", workdir / "colbert-prompted",
                       lambda m: m["multi-vector"].__setitem__("prompts", PROMPTS))
    with ServerProcess(repo) as proc:
        yield proc


@pytest.mark.parametrize("prompted", [False, True])
@pytest.mark.parametrize("input_type", ["query", "document", None])
def test_tokenize_is_what_encode_multi_vector_reads(
    request: pytest.FixtureRequest, kinds_sources: dict[str, Path], prompted: bool, input_type: str | None
) -> None:
    """Tokenize's ids are MultiVectorEncoder.preprocess's for the task (prompt, query/document length,
    [MASK] expansion), its counts EncodeMultiVector's, max_tokens the task's length."""
    server: ServerProcess = request.getfixturevalue("prompted_server" if prompted else "kinds_server")
    model = _encoder(kinds_sources["tiny-colbert"])
    if prompted:
        model.prompts = dict(PROMPTS)
    prompt = model.prompts.get(input_type or "", "")
    assert bool(prompt) is (prompted and input_type is not None)
    features = model.preprocess(TEXTS, prompt=prompt or None, task=input_type)
    with Client(server.target) as client:
        got = client.tokenize("tiny-colbert", TEXTS, input_type=input_type)
        streamed = client.tokenize_stream("tiny-colbert", TEXTS, chunk_size=3, input_type=input_type)
        encoded = client.encode_multi_vector("tiny-colbert", TEXTS, input_type=input_type)
        raw = client._call(client._multi_vector.EncodeMultiVector, _codec.multi_vector_request(
            "tiny-colbert", TEXTS, input_type=input_type))
        short = client.tokenize("tiny-colbert", ["a"], input_type=input_type)[0]
        uncut = client.tokenize("tiny-colbert", ["a"], input_type=input_type, truncation="none")[0]
    expanded = features.get("query_expansion_positions")
    for i, item in enumerate(got):
        read = features["attention_mask"][i].bool()
        if expanded is not None:
            read |= expanded[i].bool()
        assert item.ids == features["input_ids"][i][read].tolist()
        assert item.prompt == prompt and item.max_tokens == {"query": 12, "document": 40, None: 64}[input_type]
        if expanded is not None and expanded[i].any():  # the [MASK] tokens, flagged special, no span
            tail = item.tokens[-int(expanded[i].sum()):]
            assert {(t.id, t.text, t.special, t.start, t.end) for t in tail} == {(103, "[MASK]", True, 0, 0)}
        assert any(t.prompt for t in item.tokens) is bool(prompt)
    assert [t.token_count for t in got] == list(raw.token_counts)
    assert [t.truncated for t in got] == list(raw.truncated)
    assert [t.ids for t in streamed] == [t.ids for t in got]
    assert uncut.ids == short.ids and not uncut.truncated  # truncation "none" reads a short text the same way
    if input_type == "query":  # every query is read at 12 tokens, short ones through the expansion; all scored
        assert {t.token_count for t in got} == {12} and any(t.ids[-1] == 103 for t in got)
        assert [t.token_count for t in got] == [v.shape[0] for v in encoded]
        assert short.token_count == 12 and short.ids[-1] == 103
    else:  # the skiplist (documents, and encode()) drops vectors, never tokens Tokenize reports
        assert all(t.token_count >= v.shape[0] for t, v in zip(got, encoded))
        assert any(t.token_count > v.shape[0] for t, v in zip(got, encoded))
        assert got[-1].truncated and got[-1].token_count == got[-1].max_tokens
