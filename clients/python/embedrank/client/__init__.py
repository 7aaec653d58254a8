"""Python client for embedrank.

    from embedrank.client import Client
    vectors = Client("localhost:50051").encode("minilm", ["a", "b"])   # float32 (2, dim)
"""

from embedrank.client._async import AsyncClient
from embedrank.client._channel import tls_credentials
from embedrank.client._sync import Client
from embedrank.client.errors import EmbedRankError
from embedrank.client.types import Chunk, ChunkedEmbeddings, ModelInfo, RerankHit, SparseEmbedding, to_scipy

__all__ = [
    "AsyncClient", "Chunk", "ChunkedEmbeddings", "Client", "EmbedRankError", "ModelInfo", "RerankHit", "SparseEmbedding",
    "tls_credentials", "to_scipy",
]
