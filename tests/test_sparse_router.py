"""Inference-free (asymmetric) SPLADE: a SparseEncoder whose Router sends queries through a
SparseStaticEmbedding and documents through an MLM + SpladePooling. Exported (the document graph plus
the query weights), served by a real server, compared with SparseEncoder.encode_query /
encode_document / encode through the Python client; bad inputs; the self check covers the query side."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from embedrank.client import Client, EmbedRankError
from embedrank.exporter import corpus
from embedrank.model.errors import DeadlineExceeded
from embedrank.v1 import embed_pb2, sparse_pb2, sparse_pb2_grpc, tokenize_pb2, tokenize_pb2_grpc
from tests import checkpoints
from tests.conftest import ServerProcess, export_all

TEXTS = ["Hello world", "What is the capital of France?", *corpus.sentences(5), " ".join(corpus.paragraphs()[:4]),
         "Ünïcödé, emoji 🙂 and CJK 漢字"]


@pytest.fixture(scope="module")
def router_sources(workdir: Path) -> dict[str, Path]:
    out = workdir / "router-checkpoints"
    out.mkdir()
    return {"tiny-router": checkpoints.build_sparse_router(out),
            "tiny-router-nodefault": checkpoints.build_sparse_router(out, default_route=None),
            "tiny-router-cased": checkpoints.build_sparse_router(out, cased_query=True)}


@pytest.fixture(scope="module")
def router_repo(workdir: Path, router_sources: dict[str, Path]) -> Path:
    return export_all(router_sources, workdir / "router-repo")


@pytest.fixture(scope="module")
def router_server(router_repo: Path) -> Iterator[ServerProcess]:
    with ServerProcess(router_repo) as proc:
        yield proc


def _encoder(path: Path):  # type: ignore[no-untyped-def]
    from sentence_transformers import SparseEncoder

    return SparseEncoder(str(path), device="cpu")


def _dense(emb) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.asarray(emb.to_dense().cpu().numpy(), dtype=np.float32)


def _assert_same(got, ref: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    """Same non-zero indices, values within 1e-4 relative, highest first (the exact sparse gate)."""
    assert len(got) == ref.shape[0]
    for vec, row in zip(got, ref):
        assert sorted(vec.indices.tolist()) == np.flatnonzero(row).tolist()
        np.testing.assert_allclose(vec.values, row[vec.indices], rtol=1e-4, atol=1e-6)
        assert list(vec.values) == sorted(vec.values, reverse=True)


def test_manifest_names_the_routes(router_repo: Path) -> None:
    version = router_repo / "tiny-router" / "1"
    manifest = json.loads((version / "manifest.json").read_text())
    router = manifest["sparse"]["router"]
    assert router["document"] == "graph" and router["default_route"] == "document"
    query = router["query"]
    assert query["type"] == "static" and query["weights"] == "query_weights.npy"
    # SparseStaticEmbedding tokenizes without [CLS]/[SEP] and truncates at its tokenizer's model_max_length.
    assert query["tokenizer"] == {"file": "tokenizer.json", "max_tokens": 16, "add_special_tokens": False}
    weights = np.load(version / "query_weights.npy")
    assert weights.shape == (30522,) and weights.dtype == np.float32 and 0.15 < float(np.mean(weights == 0)) < 0.25
    fidelity = manifest["fidelity"]
    assert fidelity["parity"]["index_agreement"] == 1.0 and fidelity["parity"]["max_rel_diff"] <= 1e-4
    assert fidelity["query_parity"]["index_agreement"] == 1.0 and fidelity["query_parity"]["max_rel_diff"] == 0.0
    assert manifest["self_check"]["queries"] == 3 and len(manifest["self_check"]["inputs"]) == 9
    nodefault = json.loads((router_repo / "tiny-router-nodefault" / "1" / "manifest.json").read_text())
    assert nodefault["sparse"]["router"]["default_route"] is None


def test_matches_encode_query_document_and_encode(router_server: ServerProcess, router_sources: dict[str, Path]) -> None:
    model = _encoder(router_sources["tiny-router"])
    with Client(router_server.target) as client:
        queries = client.encode_sparse("tiny-router", TEXTS, input_type="query")
        documents = client.encode_sparse("tiny-router", TEXTS, input_type="document")
        default = client.encode_sparse("tiny-router", TEXTS)
    _assert_same(queries, _dense(model.encode_query(TEXTS)))  # with the "query: " prompt, the static route
    _assert_same(documents, _dense(model.encode_document(TEXTS)))
    _assert_same(default, _dense(model.encode(TEXTS)))  # Router.default_route: the document route
    # The query side is a lookup of the (at most 16) distinct tokens; the document side the MLM's 100.
    assert all(0 < q.indices.size <= 16 for q in queries) and all(d.indices.size == 100 for d in documents)


def test_query_side_tokens_top_k_and_truncation(router_server: ServerProcess, router_sources: dict[str, Path]) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(router_sources["tiny-router"] / "query_0_SparseStaticEmbedding"))
    long_text = " ".join(corpus.paragraphs()[:2])
    with Client(router_server.target) as client:
        top = client.encode_sparse("tiny-router", ["What is the capital of France?"], input_type="query", top_k=3,
                                   return_tokens=True)
    with grpc.insecure_channel(router_server.target) as channel:
        request = sparse_pb2.EncodeSparseRequest(model="tiny-router", texts=[long_text, "Hello"],
                                                 input_type=embed_pb2.INPUT_TYPE_QUERY)
        raw = sparse_pb2_grpc.SparseEmbedStub(channel).EncodeSparse(request, timeout=30)
    assert top[0].indices.size == 3 and top[0].tokens == tok.convert_ids_to_tokens(top[0].indices.tolist())
    # No special tokens, the 16-token cut (with the prompt), and the flag saying it was cut.
    short = len(tok("query: Hello", add_special_tokens=False).input_ids)
    assert short == 3 and list(raw.token_counts) == [16, short] and list(raw.truncated) == [True, False]


def test_no_default_route_needs_an_input_type(router_server: ServerProcess, router_sources: dict[str, Path]) -> None:
    model = _encoder(router_sources["tiny-router-nodefault"])
    with pytest.raises(ValueError, match="Could not determine route"):
        model.encode(["a"])  # sentence-transformers refuses it too
    with Client(router_server.target) as client:
        with pytest.raises(EmbedRankError) as err:
            client.encode_sparse("tiny-router-nodefault", ["a"])
        assert err.value.code is grpc.StatusCode.INVALID_ARGUMENT and "input_type" in str(err.value)
        assert "QUERY or DOCUMENT" in str(err.value)
        queries = client.encode_sparse("tiny-router-nodefault", TEXTS[:3], input_type="query")
        with pytest.raises(EmbedRankError) as err:
            client.encode_sparse("tiny-router", [" "], input_type="query")
        assert err.value.code is grpc.StatusCode.INVALID_ARGUMENT and "texts[0]" in str(err.value)
    _assert_same(queries, _dense(model.encode_query(TEXTS[:3])))


def test_self_check_covers_the_query_weights(workdir: Path, router_repo: Path) -> None:
    """Query weights changed after export: the load-time self check (its query texts) refuses the model."""
    repo = workdir / "router-edited"
    shutil.copytree(router_repo / "tiny-router", repo / "tiny-router")
    path = repo / "tiny-router" / "1" / "query_weights.npy"
    weights = np.load(path)
    np.save(path, (weights * 1.01).astype(np.float32))
    with pytest.raises(RuntimeError) as err:
        ServerProcess(repo).stop()
    assert "SELF CHECK FAILED" in str(err.value) and "max relative value diff" in str(err.value)
    np.save(path, weights[:100])
    with pytest.raises(RuntimeError) as err:
        ServerProcess(repo).stop()
    assert "query_weights.npy: must hold 30522 finite float32 weights" in str(err.value)


def test_query_tokenizer_of_its_own(router_repo: Path, router_server: ServerProcess,
                                    router_sources: dict[str, Path]) -> None:
    """A query route whose tokenizer is not the document route's (cased, 24 tokens): exported as its own
    file, served as encode_query runs it; the document route keeps the graph's tokenizer."""
    version = router_repo / "tiny-router-cased" / "1"
    manifest = json.loads((version / "manifest.json").read_text())
    query = manifest["sparse"]["router"]["query"]
    assert query["tokenizer"] == {"file": "query_tokenizer.json", "max_tokens": 24, "add_special_tokens": False}
    own = json.loads((version / "query_tokenizer.json").read_text())
    assert own["normalizer"]["lowercase"] is False
    assert json.loads((version / "tokenizer.json").read_text())["normalizer"]["lowercase"] is True
    assert manifest["fidelity"]["query_parity"]["index_agreement"] == 1.0
    model = _encoder(router_sources["tiny-router-cased"])
    with Client(router_server.target) as client:
        queries = client.encode_sparse("tiny-router-cased", TEXTS, input_type="query", return_tokens=True)
        documents = client.encode_sparse("tiny-router-cased", TEXTS, input_type="document")
    _assert_same(queries, _dense(model.encode_query(TEXTS)))
    _assert_same(documents, _dense(model.encode_document(TEXTS)))
    # Upper-case words are [UNK] to the cased query tokenizer (the lowercasing one knows "hello").
    assert "[UNK]" in queries[0].tokens and "hello" not in queries[0].tokens


def _query_route(model):  # type: ignore[no-untyped-def]
    """The library's query route: its SparseStaticEmbedding, and the prompt encode_query puts first."""
    return model[0].sub_modules["query"][0], model.prompts["query"]


@pytest.mark.parametrize("name, query_max", [("tiny-router", 16), ("tiny-router-cased", 24)])
def test_tokenize_query_is_the_query_routes(router_server: ServerProcess, router_sources: dict[str, Path],
                                            name: str, query_max: int) -> None:
    """Tokenize(QUERY) on a Router model: the ids SparseStaticEmbedding tokenizes (no special tokens, the
    route's own length and tokenizer), as many as EncodeSparse counts; DOCUMENT: the graph's tokenizer."""
    model = _encoder(router_sources[name])
    static, prompt = _query_route(model)
    doc_tokenizer = model[0].sub_modules["document"][0].tokenizer
    with Client(router_server.target) as client:
        tokenized = client.tokenize(name, TEXTS, input_type="query")
        documents = client.tokenize(name, TEXTS, input_type="document")
    with grpc.insecure_channel(router_server.target) as channel:
        sparse = sparse_pb2_grpc.SparseEmbedStub(channel)
        encoded = sparse.EncodeSparse(sparse_pb2.EncodeSparseRequest(
            model=name, texts=TEXTS, input_type=embed_pb2.INPUT_TYPE_QUERY), timeout=30)
        encoded_docs = sparse.EncodeSparse(sparse_pb2.EncodeSparseRequest(
            model=name, texts=TEXTS, input_type=embed_pb2.INPUT_TYPE_DOCUMENT), timeout=30)
        request = tokenize_pb2.TokenizeRequest(model=name, texts=TEXTS, input_type=embed_pb2.INPUT_TYPE_QUERY)
        streamed = list(tokenize_pb2_grpc.TokenizeStub(channel).TokenizeStream(
            iter([tokenize_pb2.TokenizeStreamRequest(id="q", request=request)]), timeout=30))
    for i, (text, got) in enumerate(zip(TEXTS, tokenized, strict=True)):
        ref = static.preprocess([text], prompt=prompt)
        assert got.ids == ref["input_ids"][0].tolist(), text
        assert got.token_count == int(ref["attention_mask"].sum()) == encoded.token_counts[i]
        assert got.truncated == encoded.truncated[i] and got.max_tokens == query_max and got.prompt == prompt
        assert not any(t.special for t in got.tokens)
    assert any(t.truncated for t in tokenized)  # the paragraphs are cut at the query route's length
    assert [[t.id for t in i.tokens] for i in streamed[0].response.inputs] == [t.ids for t in tokenized]
    assert streamed[0].response.max_tokens == query_max
    for i, (text, got) in enumerate(zip(TEXTS, documents, strict=True)):
        assert got.ids == doc_tokenizer(text, truncation=True, max_length=64).input_ids, text
        assert got.token_count == encoded_docs.token_counts[i] and got.max_tokens == 64 and got.prompt == ""
        assert got.tokens[0].special and got.tokens[-1].special  # [CLS] ... [SEP]
    if name == "tiny-router-cased":  # the query tokenizer is really another one: ids differ from the graph's
        assert tokenized[0].ids != doc_tokenizer(prompt + TEXTS[0], add_special_tokens=False).input_ids


def test_tokenize_without_a_route_is_refused(router_server: ServerProcess) -> None:
    """A Router model without a default route: Tokenize without an input type is refused as EncodeSparse is."""
    with Client(router_server.target) as client:
        with pytest.raises(EmbedRankError) as err:
            client.tokenize("tiny-router-nodefault", ["a"])
        assert err.value.code is grpc.StatusCode.INVALID_ARGUMENT and "QUERY or DOCUMENT" in str(err.value)
        assert client.tokenize("tiny-router-nodefault", ["a"], input_type="query")[0].max_tokens == 16


async def test_past_deadline_on_the_query_route(workdir: Path, router_repo: Path) -> None:
    """The engine in process (a client's too-short timeout would end the call on the client's side whatever the
    server does): a deadline already passed is DeadlineExceeded on the query route, as on the graph route."""
    from embedrank.server.config import parse
    from embedrank.server.engine.engine import Engine
    from embedrank.server.engine.requests import InputType
    from embedrank.server.engine.sparse import SparseParams

    repo = workdir / "router-deadline"
    shutil.copytree(router_repo / "tiny-router", repo / "tiny-router")
    config = parse(["--model-repository", str(repo)])
    engine = Engine(config.engine_settings, config.runtime_settings)
    await engine.load()
    try:
        model = engine.sparse("tiny-router")
        for input_type in (InputType.QUERY, InputType.DOCUMENT):
            params = SparseParams(["Hello world"], input_type=input_type)
            with pytest.raises(DeadlineExceeded):
                await model.encode_sparse(params, deadline=time.monotonic() - 0.001, request_id="late")
            result = await model.encode_sparse(params, deadline=time.monotonic() + 30, request_id="in-time")
            assert result.vectors[0].indices.size > 0
        assert engine.admission.in_flight == 0  # the refused requests gave their admission back
    finally:
        await engine.close()
