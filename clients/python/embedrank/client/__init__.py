"""Python client for embedrank.

    from embedrank.client import Client
    vectors = Client("localhost:50051").encode("minilm", ["a", "b"])   # float32 (2, dim)
"""

from embedrank.client._async import AsyncClient
from embedrank.client._channel import tls_credentials
from embedrank.client._sync import Client
from embedrank.client.errors import EmbedRankError
from embedrank.client.types import (
    Chunk, ChunkedEmbeddings, Classification, HybridEmbeddings, LabelScore, ModelInfo, RerankHit, SparseEmbedding, Token, Tokenized, to_scipy,
)

__all__ = [
    "AsyncClient", "Chunk", "ChunkedEmbeddings", "Classification", "Client", "EmbedRankError", "HybridEmbeddings", "LabelScore",
    "ModelInfo", "RerankHit", "SparseEmbedding", "Token", "Tokenized", "tls_credentials", "to_scipy",
]
