"""Many concurrent bidi streams: every response arrives once, in order, with its id; cancels are clean."""

from __future__ import annotations

import asyncio
import time

import grpc
import numpy as np

from embedrank.exporter import corpus
from embedrank.v1 import embed_pb2, embed_pb2_grpc, rerank_pb2, rerank_pb2_grpc

from tests.conftest import ServerProcess

TEXTS = corpus.sentences(200)


async def test_300_concurrent_streams_lose_nothing(target: str) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = embed_pb2_grpc.EmbedStub(channel)
        reference = embed_pb2_grpc.EmbedStub(channel)
        ref = await reference.Encode(embed_pb2.EncodeRequest(model="tiny-bert", texts=TEXTS[:50]))
        ref_rows = np.frombuffer(ref.embeddings.data, dtype="<f4").reshape(50, -1)

        async def one(s: int) -> None:
            ids = [f"{s}-{k}" for k in range(6)]

            async def requests():  # type: ignore[no-untyped-def]
                for k, rid in enumerate(ids):
                    i = (s + k) % 50
                    yield embed_pb2.EncodeStreamRequest(id=rid, request=embed_pb2.EncodeRequest(model="tiny-bert", texts=[TEXTS[i]]))

            got = [r async for r in stub.EncodeStream(requests())]
            assert [r.id for r in got] == ids
            for k, r in enumerate(got):
                row = np.frombuffer(r.response.embeddings.data, dtype="<f4")
                np.testing.assert_allclose(row, ref_rows[(s + k) % 50], atol=1e-5)

        await asyncio.gather(*(one(s) for s in range(300)))


async def test_client_cancels_mid_stream_then_server_serves_on(server: ServerProcess) -> None:
    target = server.target
    async with grpc.aio.insecure_channel(target) as channel:
        stub = rerank_pb2_grpc.RerankStub(channel)
        queue: asyncio.Queue[rerank_pb2.RerankStreamRequest | None] = asyncio.Queue()

        async def requests():  # type: ignore[no-untyped-def]
            while (item := await queue.get()) is not None:
                yield item

        call = stub.RerankStream(requests())
        for i in range(20):
            queue.put_nowait(rerank_pb2.RerankStreamRequest(
                id=str(i), request=rerank_pb2.RerankRequest(model="minilm-rerank", query="q", documents=TEXTS[:50])))
        first = await call.read()
        assert first.id == "0"
        call.cancel()
        # Still serving, and the cancelled work is gone from the queue soon after.
        resp = await stub.Rerank(rerank_pb2.RerankRequest(model="minilm-rerank", query="q", documents=TEXTS[:3]))
        assert len(resp.results) == 3
    # Every admitted input of the cancelled stream is released: nothing in flight, nothing queued.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = server.metrics()
        if "embedrank_inflight_inputs 0.0" in text and 'embedrank_queued_inputs{model="minilm-rerank"} 0.0' in text:
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError(text)
