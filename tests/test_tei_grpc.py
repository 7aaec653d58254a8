"""TEI's gRPC API (tei.v1) on the gRPC port: each RPC against embedrank.v1's answer for the same input,
the streams, the model pick, the errors, and a client generated from TEI's own proto (the wire check)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from embedrank.client import Client
from embedrank.tei.v1 import tei_pb2, tei_pb2_grpc
from tests.conftest import ServerProcess

TEXTS = ["The cat sat on the mat.", "Grüße aus Köln — ünïcödé text", "a", "Stocks fell sharply on Monday."]
QUERY = "Where did the cat sit?"
TOKEN = "tei-token"


def named(model: str) -> tuple[tuple[str, str], ...]:
    return (("embedrank-model", model),)


@pytest.fixture(scope="module")
def channel(server: ServerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.target) as ch:
        yield ch


@pytest.fixture(scope="module")
def kinds_channel(kinds_server: ServerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(kinds_server.target) as ch:
        yield ch


@pytest.fixture(scope="module")
def tei_server(repo: Path, workdir: Path) -> Iterator[ServerProcess]:
    """minilm and minilm-rerank, --default-model minilm, a token, and a small admission bound."""
    only = workdir / f"repo-tei-grpc-{time.monotonic_ns()}"
    for name in ("minilm", "minilm-rerank"):
        shutil.copytree(repo / name, only / name)
    token = workdir / "tei-grpc-token"
    token.write_text(TOKEN)
    with ServerProcess(only, "--default-model", "minilm", "--auth-token-file", str(token),
                       "--max-inflight-inputs", "32", "--max-inputs-per-request", "32") as proc:
        yield proc


def code_of(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), info.value.details()


# ---------------------------------------------------------------- each RPC against embedrank.v1


def test_embed_equals_encode(channel: grpc.Channel, target: str) -> None:
    stub = tei_pb2_grpc.EmbedStub(channel)
    with Client(target) as client:
        for text in TEXTS:
            got = stub.Embed(tei_pb2.EmbedRequest(inputs=text, truncate=True), metadata=named("minilm"))
            want = client.encode("minilm", [text])[0]
            assert np.array_equal(np.asarray(got.embeddings, np.float32), want)  # bit for bit
            assert got.metadata.compute_chars == len(text) and got.metadata.compute_tokens > 2
        got = stub.Embed(tei_pb2.EmbedRequest(inputs=TEXTS[0], truncate=True, normalize=False, dimensions=64),
                         metadata=named("minilm"))
        want = client.encode("minilm", TEXTS[:1], normalize=False, dimensions=64)[0]
        assert len(got.embeddings) == 64 and np.array_equal(np.asarray(got.embeddings, np.float32), want)


def test_embed_stream_answers_in_order(channel: grpc.Channel, target: str) -> None:
    stub = tei_pb2_grpc.EmbedStub(channel)
    texts = [f"{t} ({i})" for i, t in enumerate(TEXTS * 4)]
    answers = list(stub.EmbedStream(iter(tei_pb2.EmbedRequest(inputs=t) for t in texts), metadata=named("minilm")))
    with Client(target) as client:
        want = client.encode("minilm", texts)
    got = np.array([a.embeddings for a in answers], np.float32)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-6)  # batched with one another: float32 rounding only


def test_rerank_equals_rerank(channel: grpc.Channel, target: str) -> None:
    stub = tei_pb2_grpc.RerankStub(channel)
    with Client(target) as client:
        for raw in (False, True):
            got = stub.Rerank(tei_pb2.RerankRequest(query=QUERY, texts=TEXTS, return_text=True, raw_scores=raw),
                              metadata=named("minilm-rerank"))
            want = client.rerank("minilm-rerank", QUERY, TEXTS, raw_scores=raw)
            assert [r.index for r in got.ranks] == [h.index for h in want]
            assert [r.score for r in got.ranks] == [np.float32(h.score) for h in want]  # bit for bit
            assert [r.text for r in got.ranks] == [TEXTS[h.index] for h in want]
        # RerankStream: one (query, text) a message, one answer; the flags of the first message.
        messages = [tei_pb2.RerankStreamRequest(query=QUERY, text=t, return_text=i == 0) for i, t in enumerate(TEXTS)]
        streamed = stub.RerankStream(iter(messages), metadata=named("minilm-rerank"))
        want = client.rerank("minilm-rerank", QUERY, TEXTS)
        assert [(r.index, r.score, r.text) for r in streamed.ranks] == [
            (h.index, np.float32(h.score), TEXTS[h.index]) for h in want]
        # Two queries in one stream: each text scored against its own.
        other = "stock market"
        mixed = [tei_pb2.RerankStreamRequest(query=QUERY if i % 2 == 0 else other, text=t) for i, t in enumerate(TEXTS)]
        scores = {r.index: r.score for r in stub.RerankStream(iter(mixed), metadata=named("minilm-rerank")).ranks}
        for i, text in enumerate(TEXTS):
            hit = client.rerank("minilm-rerank", QUERY if i % 2 == 0 else other, [text])[0]
            assert scores[i] == pytest.approx(hit.score, abs=1e-6)


def test_predict_equals_classify(channel: grpc.Channel, target: str) -> None:
    stub = tei_pb2_grpc.PredictStub(channel)
    pair = ("A man is eating.", "Someone eats food.")
    with Client(target) as client:
        for raw in (False, True):
            got = stub.Predict(tei_pb2.PredictRequest(inputs=TEXTS[0], raw_scores=raw), metadata=named("tiny-nli"))
            want = client.classify("tiny-nli", TEXTS[:1], raw_scores=raw)[0]
            assert [(p.label, p.score) for p in got.predictions] == [(s.label, np.float32(s.score)) for s in want.labels]
            got = stub.PredictPair(tei_pb2.PredictPairRequest(inputs=pair, raw_scores=raw), metadata=named("tiny-nli"))
            want = client.classify("tiny-nli", [pair], raw_scores=raw)[0]
            assert [(p.label, p.score) for p in got.predictions] == [(s.label, np.float32(s.score)) for s in want.labels]
        one = stub.PredictPair(tei_pb2.PredictPairRequest(inputs=TEXTS[:1]), metadata=named("tiny-nli"))
        assert one.predictions == stub.Predict(tei_pb2.PredictRequest(inputs=TEXTS[0]), metadata=named("tiny-nli")).predictions
        streamed = list(stub.PredictStream(iter(tei_pb2.PredictRequest(inputs=t) for t in TEXTS), metadata=named("tiny-nli")))
        for answer, want in zip(streamed, client.classify("tiny-nli", TEXTS), strict=True):
            assert [p.label for p in answer.predictions] == [s.label for s in want.labels]
            np.testing.assert_allclose([p.score for p in answer.predictions], [s.score for s in want.labels], atol=1e-6)
        pairs = [tei_pb2.PredictPairRequest(inputs=[t, pair[1]]) for t in TEXTS]
        streamed = list(stub.PredictPairStream(iter(pairs), metadata=named("tiny-nli")))
        for answer, want in zip(streamed, client.classify("tiny-nli", [(t, pair[1]) for t in TEXTS]), strict=True):
            np.testing.assert_allclose([p.score for p in answer.predictions], [s.score for s in want.labels], atol=1e-6)


def test_sparse_and_all_equal_their_rpcs(kinds_channel: grpc.Channel, kinds_server: ServerProcess) -> None:
    """One sparse and one multi-vector model: TEI's calls name none and get them."""
    embed = tei_pb2_grpc.EmbedStub(kinds_channel)
    with Client(kinds_server.target) as client:
        for text in TEXTS:
            got = embed.EmbedSparse(tei_pb2.EmbedSparseRequest(inputs=text, truncate=True))
            want = client.encode_sparse("tiny-sparse", [text])[0]
            indices = [v.index for v in got.sparse_embeddings]
            assert indices == sorted(indices)  # TEI lists them by vocabulary id
            assert {v.index: v.value for v in got.sparse_embeddings} == {
                int(i): np.float32(v) for i, v in zip(want.indices, want.values)}
            got = embed.EmbedAll(tei_pb2.EmbedAllRequest(inputs=text, truncate=True))
            want_rows = client.encode_multi_vector("tiny-colbert", [text])[0]
            assert np.array_equal(np.array([t.embeddings for t in got.token_embeddings], np.float32), want_rows)
        sparse = list(embed.EmbedSparseStream(iter(tei_pb2.EmbedSparseRequest(inputs=t) for t in TEXTS)))
        for answer, want in zip(sparse, client.encode_sparse("tiny-sparse", TEXTS), strict=True):
            assert {v.index for v in answer.sparse_embeddings} == {int(i) for i in want.indices}
        rows = list(embed.EmbedAllStream(iter(tei_pb2.EmbedAllRequest(inputs=t) for t in TEXTS)))
        for answer, want_rows in zip(rows, client.encode_multi_vector("tiny-colbert", TEXTS), strict=True):
            got_rows = np.array([t.embeddings for t in answer.token_embeddings], np.float32)
            np.testing.assert_allclose(got_rows, want_rows, atol=1e-5)


def test_tokenize_and_decode(channel: grpc.Channel, target: str) -> None:
    stub = tei_pb2_grpc.TokenizeStub(channel)
    text = TEXTS[1]
    with Client(target) as client:
        want = client.tokenize("minilm", [text], truncation="none")[0]
        got = stub.Tokenize(tei_pb2.EncodeRequest(inputs=text, add_special_tokens=True), metadata=named("minilm"))
        assert [t.id for t in got.tokens] == want.ids
        raw = text.encode()
        for t in got.tokens:
            if t.special:
                assert not t.HasField("start") and not t.HasField("stop")
            else:  # TEI's offsets: UTF-8 bytes, and the token's text is that slice
                assert raw[t.start:t.stop].decode() == t.text
        plain = stub.Tokenize(tei_pb2.EncodeRequest(inputs=text), metadata=named("minilm"))
        assert [t.id for t in plain.tokens] == [t.id for t in want.tokens if not t.special]
        ids = [t.id for t in got.tokens]
        for skip in (False, True):
            decoded = stub.Decode(tei_pb2.DecodeRequest(ids=ids, skip_special_tokens=skip), metadata=named("minilm"))
            assert decoded.text == client.decode("minilm", ids, skip_special_tokens=skip)
        streamed = list(stub.TokenizeStream(iter(tei_pb2.EncodeRequest(inputs=t) for t in TEXTS), metadata=named("minilm")))
        assert [[t.id for t in a.tokens] for a in streamed] == [
            [t.id for t in w.tokens if not t.special] for w in client.tokenize("minilm", TEXTS, truncation="none")]
        decoded = list(stub.DecodeStream(iter(tei_pb2.DecodeRequest(ids=[t.id for t in a.tokens]) for a in streamed),
                                         metadata=named("minilm")))
        assert [d.text for d in decoded] == [client.decode("minilm", [t.id for t in a.tokens]) for a in streamed]


# ---------------------------------------------------------------- the pick, Info, health, reflection


def test_default_model_info_health_and_auth(tei_server: ServerProcess) -> None:
    auth = (("authorization", f"Bearer {TOKEN}"),)
    with grpc.insecure_channel(tei_server.target) as ch, Client(tei_server.target, token=TOKEN) as client:
        info = tei_pb2_grpc.InfoStub(ch).Info(tei_pb2.InfoRequest(), metadata=auth)
        assert (info.model_id, info.model_type, info.model_dtype) == ("minilm", tei_pb2.MODEL_TYPE_EMBEDDING, "float32")
        assert (info.max_concurrent_requests, info.max_client_batch_size, info.max_input_length) == (32, 32, 256)
        assert info.version and info.max_batch_tokens > 0
        info = tei_pb2_grpc.InfoStub(ch).Info(tei_pb2.InfoRequest(), metadata=(*auth, *named("minilm-rerank")))
        assert (info.model_id, info.model_type) == ("minilm-rerank", tei_pb2.MODEL_TYPE_RERANKER)
        # No model named: --default-model for Embed, the only reranker for Rerank.
        got = tei_pb2_grpc.EmbedStub(ch).Embed(tei_pb2.EmbedRequest(inputs=TEXTS[0]), metadata=auth)
        assert np.array_equal(np.asarray(got.embeddings, np.float32), client.encode("minilm", TEXTS[:1])[0])
        ranks = tei_pb2_grpc.RerankStub(ch).Rerank(tei_pb2.RerankRequest(query=QUERY, texts=TEXTS), metadata=auth).ranks
        assert [r.index for r in ranks] == [h.index for h in client.rerank("minilm-rerank", QUERY, TEXTS)]
        # The token guards tei.v1 as it guards embedrank.v1; health and reflection stay open.
        code, details = code_of(lambda: tei_pb2_grpc.EmbedStub(ch).Embed(tei_pb2.EmbedRequest(inputs="a")))
        assert code == grpc.StatusCode.UNAUTHENTICATED and "bearer token" in details
        code, _ = code_of(lambda: tei_pb2_grpc.InfoStub(ch).Info(tei_pb2.InfoRequest(), metadata=(("authorization", "Bearer no"),)))
        assert code == grpc.StatusCode.UNAUTHENTICATED
        health = health_pb2_grpc.HealthStub(ch)
        for service in ("tei.v1.Info", "tei.v1.Embed", "tei.v1.Predict", "tei.v1.Rerank", "tei.v1.Tokenize"):
            assert health.Check(health_pb2.HealthCheckRequest(service=service)).status == health_pb2.HealthCheckResponse.SERVING
        from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

        reflect = reflection_pb2_grpc.ServerReflectionStub(ch)
        answer = next(reflect.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
        listed = {s.name for s in answer.list_services_response.service}
        assert {"tei.v1.Embed", "tei.v1.Rerank", "embedrank.v1.Embed"} <= listed


def test_over_admission_is_resource_exhausted(tei_server: ServerProcess) -> None:
    """32 inputs in flight: one Rerank of 32 long texts fills the bound, the ones beside it are refused at once."""
    import asyncio

    texts = [" ".join(TEXTS * 12) + f" {i}" for i in range(32)]

    async def fire() -> list[Any]:
        async with grpc.aio.insecure_channel(tei_server.target) as ch:
            stub = tei_pb2_grpc.RerankStub(ch)
            auth = (("authorization", f"Bearer {TOKEN}"),)
            calls = [stub.Rerank(tei_pb2.RerankRequest(query=QUERY, texts=texts, truncate=True), metadata=auth)
                     for _ in range(8)]
            return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(fire())
    ok = [r for r in results if isinstance(r, tei_pb2.RerankResponse)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert ok and refused and len(ok) + len(refused) == 8
    assert all(r.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for r in refused)


def test_unnamed_model_order() -> None:
    """Engine.resolve for a call naming no model: the default when of the kind, else the only one of the kind."""
    from types import SimpleNamespace

    from embedrank.model.errors import InvalidArgument
    from embedrank.model.kinds import ModelKind
    from embedrank.server import config
    from embedrank.server.engine.engine import Engine

    def engine(default: str) -> Engine:
        cfg = config.parse(["--model-repository", "unused", "--default-model", default])
        e = Engine(cfg.engine_settings, cfg.runtime_settings)
        kinds = {"e1": ModelKind.EMBEDDING, "e2": ModelKind.EMBEDDING, "r": ModelKind.RERANK, "c": ModelKind.CLASSIFICATION}
        e.models = {n: SimpleNamespace(name=n, manifest=SimpleNamespace(kind=k)) for n, k in kinds.items()}  # type: ignore[misc]
        e.ready = True
        return e

    e = engine("e2")
    assert e.resolve("", ModelKind.EMBEDDING).name == "e2"  # the default, of the kind
    assert e.resolve("", ModelKind.RERANK, ModelKind.MULTI_VECTOR).name == "r"  # default of another kind: the only one
    assert e.resolve("e1", ModelKind.EMBEDDING).name == "e1"  # a named model wins
    assert e.any_model("").name == "e2"
    with pytest.raises(InvalidArgument, match="the server has 0 sparse models"):
        e.resolve("", ModelKind.SPARSE)
    with pytest.raises(InvalidArgument, match=r"2 embedding models \(e1, e2\); name one, or start the server with --default-model"):
        engine("").resolve("", ModelKind.EMBEDDING)


# ---------------------------------------------------------------- errors, as TEI's codes


def test_errors(channel: grpc.Channel, kinds_channel: grpc.Channel) -> None:
    embed = tei_pb2_grpc.EmbedStub(channel)
    rerank = tei_pb2_grpc.RerankStub(channel)
    predict = tei_pb2_grpc.PredictStub(channel)
    cases = [
        # a model that is not loaded, a name that is not a plain name
        (lambda: embed.Embed(tei_pb2.EmbedRequest(inputs="a"), metadata=named("nope")), grpc.StatusCode.NOT_FOUND, "nope"),
        (lambda: embed.Embed(tei_pb2.EmbedRequest(inputs="a"), metadata=named("../x")),
         grpc.StatusCode.INVALID_ARGUMENT, "model"),
        # several embedding models and no --default-model: the choices are named
        (lambda: embed.Embed(tei_pb2.EmbedRequest(inputs="a")), grpc.StatusCode.INVALID_ARGUMENT, "(minilm, tiny-bert"),
        # the wrong kind (TEI: FAILED_PRECONDITION)
        (lambda: rerank.Rerank(tei_pb2.RerankRequest(query="q", texts=["a"]), metadata=named("minilm")),
         grpc.StatusCode.FAILED_PRECONDITION, "embedding model"),
        (lambda: tei_pb2_grpc.PredictStub(kinds_channel).Predict(tei_pb2.PredictRequest(inputs="a")),
         grpc.StatusCode.INVALID_ARGUMENT, "the server has 0 classification models"),
        (lambda: tei_pb2_grpc.PredictStub(kinds_channel).Predict(tei_pb2.PredictRequest(inputs="a"), metadata=named("tiny-bert")),
         grpc.StatusCode.FAILED_PRECONDITION, "embedding model"),
        # empty inputs, named as TEI's messages name them
        (lambda: embed.Embed(tei_pb2.EmbedRequest(inputs=""), metadata=named("minilm")),
         grpc.StatusCode.INVALID_ARGUMENT, "inputs: is empty"),
        (lambda: rerank.Rerank(tei_pb2.RerankRequest(query="q"), metadata=named("minilm-rerank")),
         grpc.StatusCode.INVALID_ARGUMENT, "texts: is empty"),
        (lambda: rerank.RerankStream(iter([]), metadata=named("minilm-rerank")), grpc.StatusCode.INVALID_ARGUMENT, "text"),
        (lambda: predict.PredictPair(tei_pb2.PredictPairRequest(inputs=["a", "b", "c"]), metadata=named("tiny-nli")),
         grpc.StatusCode.INVALID_ARGUMENT, "inputs: must hold one text or two"),
        (lambda: predict.PredictPair(tei_pb2.PredictPairRequest(inputs=["a", " "]), metadata=named("tiny-nli")),
         grpc.StatusCode.INVALID_ARGUMENT, "inputs[1]"),
        # truncate unset (TEI's default): an over-long input is refused, not cut
        (lambda: embed.Embed(tei_pb2.EmbedRequest(inputs="word " * 400), metadata=named("minilm")),
         grpc.StatusCode.INVALID_ARGUMENT, "inputs"),
        (lambda: embed.Embed(tei_pb2.EmbedRequest(inputs="a", truncation_direction=7), metadata=named("minilm")),
         grpc.StatusCode.INVALID_ARGUMENT, "truncation_direction"),
        # a message over --max-message-mb (32 MiB): grpc refuses it before any handler
        (lambda: embed.Embed(tei_pb2.EmbedRequest(inputs="b" * (33 << 20)), metadata=named("minilm")),
         grpc.StatusCode.RESOURCE_EXHAUSTED, "larger than max"),
    ]
    for call, code, text in cases:
        got, details = code_of(call)
        assert (got, text in details) == (code, True), details
    long = embed.Embed(tei_pb2.EmbedRequest(inputs="word " * 400, truncate=True), metadata=named("minilm"))
    assert long.metadata.compute_tokens == 256


def test_stream_ends_at_its_first_failure(channel: grpc.Channel) -> None:
    stub = tei_pb2_grpc.EmbedStub(channel)
    messages = [tei_pb2.EmbedRequest(inputs=t) for t in ("one", "two", "", "four")]
    call = stub.EmbedStream(iter(messages), metadata=named("minilm"))
    answers = []
    with pytest.raises(grpc.RpcError) as info:
        for answer in call:
            answers.append(answer)
    assert len(answers) == 2  # the answers before the failing message, then its status
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "inputs" in info.value.details()


def test_past_deadline(channel: grpc.Channel) -> None:
    texts = [" ".join(TEXTS * 12) + f" {i}" for i in range(64)]
    stub = tei_pb2_grpc.RerankStub(channel)
    code, _ = code_of(lambda: stub.Rerank(tei_pb2.RerankRequest(query=QUERY, texts=texts, truncate=True),
                                          metadata=named("minilm-rerank"), timeout=0.05))
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert stub.Rerank(tei_pb2.RerankRequest(query=QUERY, texts=TEXTS), metadata=named("minilm-rerank")).ranks


# ---------------------------------------------------------------- the wire check: TEI's own proto

TEI_MIRROR = Path("/work/.mirror/huggingface+text-embeddings-inference/repo")

# Runs in its own process: TEI's generated tei_pb2 and ours both define tei.v1.*, which one
# protobuf descriptor pool refuses to hold twice.
_WIRE_CLIENT = textwrap.dedent('''
    import json, sys
    import grpc
    import tei_pb2, tei_pb2_grpc

    main, kinds, texts, query = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
    m = lambda name: (("embedrank-model", name),)
    out = {}
    with grpc.insecure_channel(main) as ch, grpc.insecure_channel(kinds) as kch:
        info = tei_pb2_grpc.InfoStub(ch).Info(tei_pb2.InfoRequest(), metadata=m("minilm"))
        out["info"] = [info.model_id, info.model_type, info.max_input_length]
        embed = tei_pb2_grpc.EmbedStub(ch)
        out["Embed"] = [list(embed.Embed(tei_pb2.EmbedRequest(inputs=t, truncate=True), metadata=m("minilm")).embeddings)
                        for t in texts]
        out["EmbedStream"] = [list(r.embeddings) for r in embed.EmbedStream(
            iter(tei_pb2.EmbedRequest(inputs=t) for t in texts), metadata=m("minilm"))]
        kembed = tei_pb2_grpc.EmbedStub(kch)
        out["EmbedSparse"] = [{v.index: v.value for v in kembed.EmbedSparse(tei_pb2.EmbedSparseRequest(inputs=t)).sparse_embeddings}
                              for t in texts]
        out["EmbedSparseStream"] = [len(r.sparse_embeddings) for r in kembed.EmbedSparseStream(
            iter(tei_pb2.EmbedSparseRequest(inputs=t) for t in texts))]
        out["EmbedAll"] = [[list(e.embeddings) for e in kembed.EmbedAll(tei_pb2.EmbedAllRequest(inputs=t)).token_embeddings]
                           for t in texts]
        out["EmbedAllStream"] = [len(r.token_embeddings) for r in kembed.EmbedAllStream(
            iter(tei_pb2.EmbedAllRequest(inputs=t) for t in texts))]
        predict = tei_pb2_grpc.PredictStub(ch)
        p = lambda r: [[x.label, x.score] for x in r.predictions]
        out["Predict"] = [p(predict.Predict(tei_pb2.PredictRequest(inputs=t), metadata=m("tiny-nli"))) for t in texts]
        out["PredictPair"] = [p(predict.PredictPair(tei_pb2.PredictPairRequest(inputs=[query, t]), metadata=m("tiny-nli")))
                              for t in texts]
        out["PredictStream"] = [p(r) for r in predict.PredictStream(
            iter(tei_pb2.PredictRequest(inputs=t) for t in texts), metadata=m("tiny-nli"))]
        out["PredictPairStream"] = [p(r) for r in predict.PredictPairStream(
            iter(tei_pb2.PredictPairRequest(inputs=[query, t]) for t in texts), metadata=m("tiny-nli"))]
        rerank = tei_pb2_grpc.RerankStub(ch)
        ranks = lambda r: [[x.index, x.score, x.text] for x in r.ranks]
        out["Rerank"] = ranks(rerank.Rerank(tei_pb2.RerankRequest(query=query, texts=texts, return_text=True),
                                            metadata=m("minilm-rerank")))
        out["RerankStream"] = ranks(rerank.RerankStream(iter(
            tei_pb2.RerankStreamRequest(query=query, text=t, return_text=True) for t in texts), metadata=m("minilm-rerank")))
        tok = tei_pb2_grpc.TokenizeStub(ch)
        out["Tokenize"] = [[[x.id, x.text, x.special, x.start, x.stop] for x in tok.Tokenize(
            tei_pb2.EncodeRequest(inputs=t, add_special_tokens=True), metadata=m("minilm")).tokens] for t in texts]
        out["TokenizeStream"] = [[x.id for x in r.tokens] for r in tok.TokenizeStream(
            iter(tei_pb2.EncodeRequest(inputs=t, add_special_tokens=True) for t in texts), metadata=m("minilm"))]
        ids = [[x[0] for x in toks] for toks in out["Tokenize"]]
        out["Decode"] = [tok.Decode(tei_pb2.DecodeRequest(ids=i, skip_special_tokens=True), metadata=m("minilm")).text
                         for i in ids]
        out["DecodeStream"] = [r.text for r in tok.DecodeStream(
            iter(tei_pb2.DecodeRequest(ids=i, skip_special_tokens=True) for i in ids), metadata=m("minilm"))]
    print(json.dumps(out))
''')


def tei_proto() -> str | None:
    """TEI's own proto/tei.proto: $TEI_PROTO (a file), else the fetched mirror of text-embeddings-inference."""
    if os.environ.get("TEI_PROTO"):
        return Path(os.environ["TEI_PROTO"]).read_text()
    if not TEI_MIRROR.exists():
        return None
    shown = subprocess.run(["git", "-C", str(TEI_MIRROR), "show", "HEAD:proto/tei.proto"], capture_output=True, text=True)
    return shown.stdout if shown.returncode == 0 else None


def test_wire_check_with_teis_own_proto(server: ServerProcess, kinds_server: ServerProcess, tmp_path: Path) -> None:
    """Every tei.v1 RPC called with stubs generated from TEI's own tei.proto; the answers equal embedrank.v1's."""
    source = tei_proto()
    if source is None:
        pytest.skip("TEI's proto/tei.proto is not here: set TEI_PROTO to it, or fetch "
                    f"github:huggingface/text-embeddings-inference to {TEI_MIRROR} (docs/http.md, TEI gRPC)")
    (tmp_path / "tei.proto").write_text(source)
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", str(tmp_path), f"--python_out={tmp_path}",
                    f"--grpc_python_out={tmp_path}", str(tmp_path / "tei.proto")], check=True)
    (tmp_path / "client.py").write_text(_WIRE_CLIENT)
    run = subprocess.run([sys.executable, "client.py", server.target, kinds_server.target, json.dumps(TEXTS), QUERY],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout)
    f32 = lambda xs: np.asarray(xs, np.float32)  # noqa: E731
    with Client(server.target) as client, Client(kinds_server.target) as kclient:
        assert out["info"] == ["minilm", 0, 256]
        want = client.encode("minilm", TEXTS)
        assert all(np.array_equal(f32(e), client.encode("minilm", [t])[0]) for e, t in zip(out["Embed"], TEXTS))
        np.testing.assert_allclose(f32(out["EmbedStream"]), want, atol=1e-6)
        for got, sparse in zip(out["EmbedSparse"], kclient.encode_sparse("tiny-sparse", TEXTS), strict=True):
            assert {int(k): np.float32(v) for k, v in got.items()} == {
                int(i): np.float32(v) for i, v in zip(sparse.indices, sparse.values)}
        assert out["EmbedSparseStream"] == [len(s.indices) for s in kclient.encode_sparse("tiny-sparse", TEXTS)]
        rows = kclient.encode_multi_vector("tiny-colbert", TEXTS)
        for got, r in zip(out["EmbedAll"], rows, strict=True):
            np.testing.assert_allclose(f32(got), r, atol=1e-5)
        assert out["EmbedAllStream"] == [r.shape[0] for r in rows]
        labels = lambda cs: [[s.label for s in c.labels] for c in cs]  # noqa: E731
        for key, inputs in (("Predict", TEXTS), ("PredictStream", TEXTS),
                            ("PredictPair", [(QUERY, t) for t in TEXTS]), ("PredictPairStream", [(QUERY, t) for t in TEXTS])):
            want_c = client.classify("tiny-nli", inputs)
            assert [[x[0] for x in p] for p in out[key]] == labels(want_c), key
            np.testing.assert_allclose([[x[1] for x in p] for p in out[key]],
                                       [[s.score for s in c.labels] for c in want_c], atol=1e-6)
        hits = client.rerank("minilm-rerank", QUERY, TEXTS)
        for key in ("Rerank", "RerankStream"):
            assert [[i, t] for i, _, t in out[key]] == [[h.index, TEXTS[h.index]] for h in hits], key
            np.testing.assert_allclose([s for _, s, _ in out[key]], [h.score for h in hits], atol=1e-6)
        toks = client.tokenize("minilm", TEXTS, truncation="none")
        assert [[x[0] for x in t] for t in out["Tokenize"]] == [t.ids for t in toks]
        assert out["TokenizeStream"] == [t.ids for t in toks]
        for t, text in zip(out["Tokenize"], TEXTS):
            assert all(text.encode()[s:e].decode() == tx for _, tx, special, s, e in t if not special)
        want_text = [client.decode("minilm", t.ids, skip_special_tokens=True) for t in toks]
        assert out["Decode"] == want_text and out["DecodeStream"] == want_text
