"""The clients' stream helpers for the kinds' ...Stream RPCs (ClassifyStream, TokenizeStream,
EncodeSparseStream, EncodeMultiVectorStream) against live servers: one stream, the corpus cut in
chunks, results in input order equal to the unary calls'; an item the server refuses raises its
error; encode_stream and rerank_stream, on the same machinery, keep working."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from embedrank.client import AsyncClient, Client, EmbedRankError
from embedrank.exporter import corpus
from tests.conftest import ServerProcess

TEXTS = corpus.sentences(11)
PAIRS = [("A man plays a guitar.", t) for t in TEXTS[:7]]


def _same_sparse(got: list, want: list) -> None:  # type: ignore[type-arg]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.indices, w.indices)
        np.testing.assert_allclose(g.values, w.values, rtol=1e-5, atol=1e-6)
        assert g.tokens == w.tokens


def test_sync_streams_equal_unary_calls(target: str, kinds_server: ServerProcess) -> None:
    with Client(target) as client:
        assert client.classify_stream("tiny-nli", PAIRS, chunk_size=3, top_k=2) == client.classify("tiny-nli", PAIRS, top_k=2)
        assert client.classify_stream("tiny-nli", TEXTS, chunk_size=4) == client.classify("tiny-nli", TEXTS)
        tokens = client.tokenize_stream("tiny-bert", TEXTS, chunk_size=5, input_type="query")
        assert tokens == client.tokenize("tiny-bert", TEXTS, input_type="query")
        assert client.tokenize_stream("tiny-nli", PAIRS, chunk_size=2) == client.tokenize("tiny-nli", PAIRS)
    with Client(kinds_server.target) as client:
        _same_sparse(client.encode_sparse_stream("tiny-sparse", TEXTS, chunk_size=4, top_k=8, return_tokens=True),
                     client.encode_sparse("tiny-sparse", TEXTS, top_k=8, return_tokens=True))
        for precision in ("float32", "int8", "ubinary"):
            streamed = client.encode_multi_vector_stream("tiny-colbert", TEXTS, chunk_size=3, input_type="query",
                                                         precision=precision)
            unary = client.encode_multi_vector("tiny-colbert", TEXTS, input_type="query", precision=precision)
            assert len(streamed) == len(TEXTS)
            for s, u in zip(streamed, unary):
                assert s.dtype == u.dtype
                np.testing.assert_allclose(s.astype(np.float32), u.astype(np.float32), atol=1e-5 if precision == "float32" else 1)


async def test_async_streams_equal_unary_calls(target: str, kinds_server: ServerProcess) -> None:
    async with AsyncClient(target) as client:
        assert await client.classify_stream("tiny-nli", PAIRS, chunk_size=3) == await client.classify("tiny-nli", PAIRS)
        assert (await client.tokenize_stream("tiny-bert", TEXTS, chunk_size=5)) == await client.tokenize("tiny-bert", TEXTS)
        hits = await client.rerank_stream("minilm-rerank", [("a query", TEXTS[:3]), ("another", TEXTS[3:5])], top_k=2)
        assert [len(h) for h in hits] == [2, 2]
        assert hits[1] == (await client.rerank("minilm-rerank", "another", TEXTS[3:5], top_k=2))
        np.testing.assert_allclose(await client.encode_stream("tiny-bert", TEXTS, chunk_size=4),
                                   await client.encode("tiny-bert", TEXTS), atol=1e-5)
    async with AsyncClient(kinds_server.target) as client:
        _same_sparse(await client.encode_sparse_stream("tiny-sparse", TEXTS, chunk_size=4, top_k=8),
                     await client.encode_sparse("tiny-sparse", TEXTS, top_k=8))
        streamed = await client.encode_multi_vector_stream("tiny-colbert", TEXTS, chunk_size=2, precision="int8")
        unary = await client.encode_multi_vector("tiny-colbert", TEXTS, precision="int8")
        assert [s.tolist() for s in streamed] == [u.tolist() for u in unary]


def test_an_item_the_server_refuses_raises_its_error(target: str, kinds_server: ServerProcess) -> None:
    bad = [*TEXTS[:5], "   ", *TEXTS[5:]]  # blank: the second chunk of 3 is refused, as its texts[2]
    with Client(kinds_server.target) as client:
        for call in (lambda: client.encode_multi_vector_stream("tiny-colbert", bad, chunk_size=3),
                     lambda: client.encode_sparse_stream("tiny-sparse", bad, chunk_size=3)):
            with pytest.raises(EmbedRankError) as err:
                call()
            assert err.value.code is grpc.StatusCode.INVALID_ARGUMENT and err.value.field == "texts[2]"
        with pytest.raises(EmbedRankError) as err:  # the wrong kind, refused per item as unary
            client.encode_multi_vector_stream("tiny-sparse", TEXTS, chunk_size=4)
        assert err.value.code is grpc.StatusCode.FAILED_PRECONDITION and "SparseEmbed.EncodeSparse" in err.value.message
        with pytest.raises(ValueError, match="precision"):  # a bad option fails before the stream opens
            client.encode_multi_vector_stream("tiny-colbert", TEXTS, precision="int4")
        with pytest.raises(ValueError, match="chunk_size"):
            client.encode_sparse_stream("tiny-sparse", TEXTS, chunk_size=0)
        assert client.encode_sparse_stream("tiny-sparse", []) == []
    with Client(target) as client:
        with pytest.raises(EmbedRankError) as err:
            client.classify_stream("tiny-nli", PAIRS, chunk_size=2, top_k=0)
        assert err.value.code is grpc.StatusCode.INVALID_ARGUMENT and err.value.field == "top_k"
        with pytest.raises(EmbedRankError) as err:
            client.tokenize_stream("no-such-model", TEXTS)
        assert err.value.code is grpc.StatusCode.NOT_FOUND
