"""The asyncio client (grpc.aio)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal, overload

import grpc
import numpy as np

from embedrank.client import _channel, _codec, _streams
from embedrank.client.errors import EmbedRankError
from embedrank.client.types import (
    ChunkedEmbeddings, Classification, HybridEmbeddings, ModelInfo, RerankHit, SparseEmbedding, Tokenized,
)
from embedrank.v1 import classify_pb2_grpc, tokenize_pb2, tokenize_pb2_grpc
from embedrank.v1 import embed_pb2, embed_pb2_grpc, models_pb2, models_pb2_grpc, rerank_pb2_grpc
from embedrank.v1 import hybrid_pb2_grpc, multivector_pb2_grpc, sparse_pb2_grpc


class AsyncClient:
    """``async with AsyncClient("localhost:50051") as c: await c.encode(...)``; same options as Client."""

    def __init__(self, target: str | Sequence[str], *, tls: bool | grpc.ChannelCredentials = False, token: str | None = None, timeout: float | None = 60.0) -> None:
        target = _channel.target(target)  # one target, or several replicas' host:port
        creds = _channel.credentials(tls)
        self._channel = (
            grpc.aio.secure_channel(target, creds, options=_channel.options())
            if creds
            else grpc.aio.insecure_channel(target, options=_channel.options())
        )
        self._embed = embed_pb2_grpc.EmbedStub(self._channel)
        self._rerank = rerank_pb2_grpc.RerankStub(self._channel)
        self._models = models_pb2_grpc.ModelsStub(self._channel)
        self._tokenize = tokenize_pb2_grpc.TokenizeStub(self._channel)
        self._classify = classify_pb2_grpc.ClassifyStub(self._channel)
        self._sparse = sparse_pb2_grpc.SparseEmbedStub(self._channel)
        self._multi_vector = multivector_pb2_grpc.MultiVectorEmbedStub(self._channel)
        self._hybrid = hybrid_pb2_grpc.HybridEmbedStub(self._channel)
        self._metadata = _channel.call_metadata(token)
        self._timeout = timeout

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def _call(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        try:
            return await method(request, timeout=timeout or self._timeout, metadata=self._metadata)
        except grpc.RpcError as err:
            raise EmbedRankError.from_rpc_error(err) from None

    async def encode_raw(self, model: str, texts: Sequence[str], *, timeout: float | None = None, **options: Any) -> embed_pb2.EncodeResponse:
        response: embed_pb2.EncodeResponse = await self._call(
            self._embed.Encode, _codec.encode_request(model, texts, **options), timeout
        )
        return response

    @overload
    async def encode(
        self, model: str, texts: Sequence[str], *, timeout: float | None = None, return_chunks: Literal[False] = False, **options: Any
    ) -> np.ndarray: ...
    @overload
    async def encode(
        self, model: str, texts: Sequence[str], *, timeout: float | None = None, return_chunks: Literal[True], **options: Any
    ) -> ChunkedEmbeddings: ...

    async def encode(
        self, model: str, texts: Sequence[str], *, timeout: float | None = None, return_chunks: bool = False, **options: Any
    ) -> np.ndarray | ChunkedEmbeddings:
        """Same options as Client.encode."""
        resp = await self.encode_raw(model, texts, timeout=timeout, return_chunks=return_chunks, **options)
        return _codec.decode_chunked(resp, texts) if return_chunks else _codec.decode_embeddings(resp)

    async def encode_stream(self, model: str, texts: Sequence[str], *, chunk_size: int = 64, **options: Any) -> np.ndarray:
        """Encode a large corpus through one EncodeStream, ``chunk_size`` texts a request."""
        if options.get("return_chunks"):
            raise TypeError("return_chunks is for encode(); encode_stream returns one vector per text")
        parts = _streams.parts(texts, chunk_size, "texts")
        out = [rows async for rows in self._ordered(_streams.ENCODE, model, parts, options)]
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    async def rerank(
        self, model: str, query: str, documents: Sequence[str], top_k: int | None = None, return_documents: bool = False, **options: Any
    ) -> list[RerankHit]:
        req = _codec.rerank_request(model, query, documents, top_k=top_k, return_documents=return_documents, **options)
        return _codec.decode_rerank(await self._call(self._rerank.Rerank, req), return_documents)

    async def rerank_stream(
        self, model: str, requests: Sequence[tuple[str, Sequence[str]]], *, top_k: int | None = None, **options: Any
    ) -> list[list[RerankHit]]:
        """Many (query, documents) requests over one RerankStream; results in request order."""
        options = {**options, "top_k": top_k}
        return [hits async for hits in self._ordered(_streams.RERANK, model, list(requests), options)]

    async def classify_stream(
        self, model: str, texts_or_pairs: Sequence[str] | Sequence[tuple[str, str]], *, chunk_size: int = 64, **options: Any
    ) -> list[Classification]:
        """Same as Client.classify_stream: one ClassifyStream, one result per input, in order."""
        return await self._flat(_streams.CLASSIFY, model, texts_or_pairs, chunk_size, options)

    async def encode_sparse_stream(self, model: str, texts: Sequence[str], *, chunk_size: int = 64, **options: Any) -> list[SparseEmbedding]:
        """Same as Client.encode_sparse_stream: one EncodeSparseStream, one vector per text, in order."""
        return await self._flat(_streams.SPARSE, model, texts, chunk_size, options)

    async def encode_multi_vector_stream(self, model: str, texts: Sequence[str], *, chunk_size: int = 64, **options: Any) -> list[np.ndarray]:
        """Same as Client.encode_multi_vector_stream: one EncodeMultiVectorStream, one matrix per text, in order."""
        return await self._flat(_streams.MULTI_VECTOR, model, texts, chunk_size, options)

    async def tokenize_stream(
        self, model: str, texts: Sequence[str] | Sequence[tuple[str, str]], *, chunk_size: int = 64, **options: Any
    ) -> list[Tokenized]:
        """Same as Client.tokenize_stream: one TokenizeStream, one result per text or pair, in order."""
        return await self._flat(_streams.TOKENIZE, model, texts, chunk_size, options)

    async def _flat(self, kind: _streams.StreamKind, model: str, items: Sequence[Any], chunk_size: int, options: dict[str, Any]) -> list[Any]:
        parts = _streams.parts(items, chunk_size, "texts")
        return [r async for results in self._ordered(kind, model, parts, options) for r in results]

    async def _ordered(
        self, kind: _streams.StreamKind, model: str, parts: Sequence[Any], options: dict[str, Any]
    ) -> AsyncIterator[Any]:
        """Each request's decoded results, in request order, from one stream."""
        items = _streams.requests(kind, model, parts, options)

        async def send() -> AsyncIterator[Any]:
            for item in items:
                yield item

        method = getattr(getattr(self, kind.stub), kind.method)
        received = 0
        try:
            async for resp in method(send(), timeout=self._timeout, metadata=self._metadata):
                yield _streams.result(kind, resp, received, options)
                received += 1
        except grpc.RpcError as err:
            raise EmbedRankError.from_rpc_error(err) from None
        _streams.check_count(received, len(parts))

    async def tokenize(
        self, model: str, texts: Sequence[str] | Sequence[tuple[str, str]], *, input_type: str | None = None, **options: Any
    ) -> list[Tokenized]:
        """The tokens the model reads for each text (with the prompt Encode puts before it for ``input_type``
        or ``prompt_name``) or each (first, second) pair: ids, token strings, code-point spans, special flags.
        options: prompt_name, truncation ("end"/"start" as Encode; "none": every token, never cut)."""
        req = _codec.tokenize_request(model, texts, input_type=input_type, **options)
        return _codec.decode_tokenize(await self._call(self._tokenize.Tokenize, req))

    async def decode(self, model: str, ids: Sequence[int], *, skip_special_tokens: bool = False) -> str:
        """Token ids back to text, as the model's tokenizer decodes them."""
        req = tokenize_pb2.DecodeRequest(model=model, ids=list(ids), skip_special_tokens=skip_special_tokens)
        text: str = (await self._call(self._tokenize.Decode, req)).text
        return text

    async def classify(
        self, model: str, texts_or_pairs: Sequence[str] | Sequence[tuple[str, str]], top_k: int | None = None, **options: Any
    ) -> list[Classification]:
        """Per text or (first, second) pair, the labels sorted by score (the model's softmax or sigmoid);
        options: raw_scores (logits), truncation."""
        req = _codec.classify_request(model, texts_or_pairs, top_k=top_k, **options)
        return _codec.decode_classify(await self._call(self._classify.Classify, req))
    async def encode_sparse(
        self, model: str, texts: Sequence[str], top_k: int | None = None, return_tokens: bool = False, **options: Any
    ) -> list[SparseEmbedding]:
        """Sparse (SPLADE) vectors, one per text: ``.indices`` and ``.values`` (highest first), ``.tokens``
        with ``return_tokens=True``, ``.to_scipy()`` for a CSR row (``embedrank.client.to_scipy(list)`` for
        a matrix). ``top_k`` keeps the largest weights only. options: input_type ("query"/"document"),
        prompt_name, truncation."""
        req = _codec.sparse_request(model, texts, top_k=top_k, return_tokens=return_tokens, **options)
        return _codec.decode_sparse(await self._call(self._sparse.EncodeSparse, req), return_tokens)

    async def encode_multi_vector(self, model: str, texts: Sequence[str], **options: Any) -> list[np.ndarray]:
        """Multi-vector (ColBERT) embeddings: per text a float32 (n_i, dim) matrix, one row per scored token.
        options: input_type ("query": the model's query length and mask-token expansion; "document": its
        document length and skiplist; unset: as MultiVectorEncoder.encode), prompt_name, truncation, precision
        ("int8"/"uint8": int8/uint8 matrices, per-dimension ranges calibrated at export; "binary"/"ubinary":
        sign bits packed 8 a byte; as encode()). ``rerank()`` on a multi-vector model scores by MaxSim."""
        req = _codec.multi_vector_request(model, texts, **options)
        return _codec.decode_multi_vector(await self._call(self._multi_vector.EncodeMultiVector, req))

    async def encode_hybrid(
        self, model: str, texts: Sequence[str], outputs: Sequence[str] | None = None, return_tokens: bool = False,
        **options: Any,
    ) -> HybridEmbeddings:
        """A hybrid (BGE-M3) model's dense vectors, lexical weights and ColBERT vectors from one model run:
        ``.dense`` (texts x dim), ``.sparse`` (a SparseEmbedding per text), ``.multi_vector`` (a matrix per
        text). ``outputs`` picks some of "dense", "sparse", "multi_vector" (default all three). options:
        sparse_top_k, input_type, prompt_name, truncation, precision ("float32", "binary", "ubinary").
        encode / encode_sparse / encode_multi_vector return one of them; rerank scores as compute_score."""
        req = _codec.hybrid_request(model, texts, outputs=outputs, return_tokens=return_tokens, **options)
        return _codec.decode_hybrid(await self._call(self._hybrid.EncodeHybrid, req), return_tokens)

    async def list_models(self) -> list[ModelInfo]:
        resp = await self._call(self._models.ListModels, models_pb2.ListModelsRequest())
        return [_codec.model_info(m) for m in resp.models]

    async def get_model(self, name: str) -> ModelInfo:
        return _codec.model_info(await self._call(self._models.GetModel, models_pb2.GetModelRequest(name=name)))
