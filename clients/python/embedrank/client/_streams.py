"""The ...Stream RPCs' shared machinery, for Client and AsyncClient: a corpus cut into requests of
``chunk_size`` inputs with ids "0", "1", ..., and each response checked (its id in request order, an
error item raised as EmbedRankError) and decoded into the inputs' results."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc

from embedrank.client import _codec
from embedrank.client.errors import EmbedRankError
from embedrank.v1 import classify_pb2, embed_pb2, multivector_pb2, rerank_pb2, sparse_pb2, tokenize_pb2


@dataclasses.dataclass(frozen=True)
class StreamKind:
    """One ...Stream RPC: the stub and its method, the item message, how a request is built
    (``build(model, part, **options)``) and how a response becomes one result per input."""

    stub: str  # the client's stub attribute
    method: str
    item: Callable[..., Any]  # the ...StreamRequest message
    build: Callable[..., Any]
    decode: Callable[[Any, dict[str, Any]], Any]  # (response, options) -> the request's results (a list, a matrix)


ENCODE = StreamKind(
    "_embed", "EncodeStream", embed_pb2.EncodeStreamRequest, _codec.encode_request,
    lambda resp, _: _codec.decode_embeddings(resp),
)
CLASSIFY = StreamKind(
    "_classify", "ClassifyStream", classify_pb2.ClassifyStreamRequest, _codec.classify_request,
    lambda resp, _: _codec.decode_classify(resp),
)
SPARSE = StreamKind(
    "_sparse", "EncodeSparseStream", sparse_pb2.EncodeSparseStreamRequest, _codec.sparse_request,
    lambda resp, options: _codec.decode_sparse(resp, bool(options.get("return_tokens"))),
)
MULTI_VECTOR = StreamKind(
    "_multi_vector", "EncodeMultiVectorStream", multivector_pb2.EncodeMultiVectorStreamRequest,
    _codec.multi_vector_request, lambda resp, _: _codec.decode_multi_vector(resp),
)
RERANK = StreamKind(  # an item is a (query, documents) pair, not a part of a corpus
    "_rerank", "RerankStream", rerank_pb2.RerankStreamRequest,
    lambda model, item, **options: _codec.rerank_request(model, item[0], item[1], **options),
    lambda resp, options: _codec.decode_rerank(resp, bool(options.get("return_documents"))),
)
TOKENIZE = StreamKind(
    "_tokenize", "TokenizeStream", tokenize_pb2.TokenizeStreamRequest, _codec.tokenize_request,
    lambda resp, _: _codec.decode_tokenize(resp),
)


def requests(kind: StreamKind, model: str, parts: Sequence[Sequence[Any]], options: dict[str, Any]) -> Iterator[Any]:
    """The stream's items, made as they are sent; the first is made here, so that a bad option
    raises before the stream opens rather than inside gRPC's sending thread."""
    first = kind.build(model, parts[0], **options) if parts else None

    def items() -> Iterator[Any]:
        for i, part in enumerate(parts):
            yield kind.item(id=str(i), request=first if i == 0 else kind.build(model, part, **options))

    return items()


def result(kind: StreamKind, resp: Any, index: int, options: dict[str, Any]) -> Any:
    """Response ``index`` of the stream, decoded; EmbedRankError for an error item or one out of order."""
    if resp.id != str(index):
        raise EmbedRankError(grpc.StatusCode.INTERNAL, f"stream out of order: got id {resp.id}, wanted {index}")
    if resp.HasField("error"):
        raise EmbedRankError.from_stream_error(resp.error)
    return kind.decode(resp.response, options)


def check_count(received: int, sent: int) -> None:
    if received != sent:
        raise EmbedRankError(grpc.StatusCode.INTERNAL, f"stream ended after {received} of {sent} responses")


def parts(items: Sequence[Any], chunk_size: int, name: str) -> list[Sequence[Any]]:
    if isinstance(items, str):
        raise TypeError(f"{name} must be a list, not one string")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    return _codec.chunks(items, chunk_size)
