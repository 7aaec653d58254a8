"""Rerank / RerankStream against a live server: parity with CrossEncoder, options, load."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import numpy as np
import pytest

from embedrank.client import AsyncClient, Client, EmbedRankError
from embedrank.exporter import corpus

QUERY = "How do I handle an exception raised inside a function?"
DOCS = corpus.sentences(60)[10:60] + [" ".join(corpus.paragraphs()[:8])]


def _ce(path: Path):  # type: ignore[no-untyped-def]
    from sentence_transformers import CrossEncoder

    return CrossEncoder(str(path), device="cpu")


@pytest.mark.parametrize("name", ["minilm-rerank", "tiny-rerank"])
def test_rerank_matches_cross_encoder_rank(target: str, sources: dict[str, Path], name: str) -> None:
    ref = _ce(sources[name]).rank(QUERY, DOCS)
    with Client(target) as client:
        got = client.rerank(name, QUERY, DOCS)
    ref_scores = np.array([r["score"] for r in ref])
    got_scores = np.array([g.score for g in got])
    np.testing.assert_allclose(got_scores, ref_scores, atol=1e-4)
    if name == "minilm-rerank":  # real weights: distinct scores, so the order is well defined
        assert [g.index for g in got] == [r["corpus_id"] for r in ref]
    else:
        assert sorted(g.index for g in got) == list(range(len(DOCS)))
    assert list(got_scores) == sorted(got_scores, reverse=True)


def test_raw_scores_top_k_and_documents(target: str, sources: dict[str, Path]) -> None:
    import torch

    ce = _ce(sources["minilm-rerank"])
    logits = ce.predict([(QUERY, d) for d in DOCS], activation_fn=torch.nn.Identity())
    with Client(target) as client:
        top = client.rerank("minilm-rerank", QUERY, DOCS, top_k=5, return_documents=True, raw_scores=True)
        everything = client.rerank("minilm-rerank", QUERY, DOCS, top_k=1000)
    assert len(top) == 5 and len(everything) == len(DOCS)
    for hit in top:
        assert hit.document == DOCS[hit.index]
        assert abs(hit.score - float(logits[hit.index])) < 1e-4
    assert [h.index for h in top] == [h.index for h in everything[:5]]


def test_long_document_is_truncated_longest_first(target: str) -> None:
    from embedrank.v1 import rerank_pb2, rerank_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        resp = rerank_pb2_grpc.RerankStub(channel).Rerank(
            rerank_pb2.RerankRequest(model="minilm-rerank", query=QUERY, documents=[DOCS[-1], DOCS[0]])
        )
    by_index = {r.index: r for r in resp.results}
    assert by_index[0].truncated and by_index[0].token_count == 256
    assert not by_index[1].truncated
    assert resp.metadata.tokens == sum(r.token_count for r in resp.results)


async def test_rerank_stream_keeps_order(target: str) -> None:
    requests = [(f"question {i} about {DOCS[i][:30]}", DOCS[i : i + 7]) for i in range(20)]
    async with AsyncClient(target) as client:
        streamed = await client.rerank_stream("minilm-rerank", requests)
        direct = [await client.rerank("minilm-rerank", q, d) for q, d in requests]
    assert len(streamed) == len(direct)
    for s, d in zip(streamed, direct):
        assert [h.index for h in s] == [h.index for h in d]
        np.testing.assert_allclose([h.score for h in s], [h.score for h in d], atol=1e-5)


async def test_32_concurrent_reranks_mixed_with_encode(target: str, sources: dict[str, Path]) -> None:
    ce = _ce(sources["minilm-rerank"])
    queries = corpus.sentences(200)[100:132]
    docs = corpus.sentences(50)
    expected = {q: [r["corpus_id"] for r in ce.rank(q, docs)] for q in queries}

    async def rerank(client: AsyncClient, q: str) -> None:
        hits = await client.rerank("minilm-rerank", q, docs)
        got = [h.index for h in hits]
        assert got == expected[q], q

    async def encode(client: AsyncClient, i: int) -> None:
        out = await client.encode("minilm", corpus.sentences(40)[i : i + 8])
        assert out.shape == (8, 384)

    async with AsyncClient(target) as client:
        await asyncio.gather(*(rerank(client, q) for q in queries), *(encode(client, i) for i in range(32)))


@pytest.mark.parametrize(
    ("model", "query", "docs", "top_k", "code", "field", "words"),
    [
        ("minilm-rerank", "", ["a"], None, grpc.StatusCode.INVALID_ARGUMENT, "query", "empty"),
        ("minilm-rerank", "q", [], None, grpc.StatusCode.INVALID_ARGUMENT, "documents", "empty"),
        ("minilm-rerank", "q", ["d"] * 257, None, grpc.StatusCode.INVALID_ARGUMENT, "documents", "limit"),
        ("minilm-rerank", "q", ["a", "b"], -1, grpc.StatusCode.INVALID_ARGUMENT, "top_k", "negative"),
        ("minilm-rerank", "q", ["ok", "x" * 1_000_000], None, grpc.StatusCode.INVALID_ARGUMENT, "documents[1]", "characters"),
        ("minilm", "q", ["a"], None, grpc.StatusCode.FAILED_PRECONDITION, "", "Embed.Encode"),
        ("nope", "q", ["a"], None, grpc.StatusCode.NOT_FOUND, "", "not loaded"),
    ],
)
def test_bad_rerank(target: str, model: str, query: str, docs: list[str], top_k: int | None, code: grpc.StatusCode, field: str, words: str) -> None:
    with Client(target) as client:
        with pytest.raises(EmbedRankError) as info:
            client.rerank(model, query, docs, top_k=top_k)
        assert info.value.code == code
        assert info.value.field == field
        assert words in info.value.message
        assert len(client.rerank("minilm-rerank", "still", ["serving", "others"])) == 2
