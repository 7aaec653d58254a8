"""The kind registry: one module per model kind (embedding.py, rerank.py), found by its ModelKind.

Adding a kind: a module here (its manifest section, graph output, comparison, warm-up inputs), its
entry below, then one module per layer above: the exporter's (embedrank.exporter.kinds), the
engine's served model (embedrank.server.engine) and the api's servicer (embedrank.server.api),
plus its proto.
"""

from __future__ import annotations

from embedrank.model.kinds.base import Kind, ModelKind
from embedrank.model.kinds.classification import CLASSIFICATION
from embedrank.model.kinds.embedding import EMBEDDING
from embedrank.model.kinds.hybrid import HYBRID
from embedrank.model.kinds.multivector import MULTI_VECTOR
from embedrank.model.kinds.rerank import RERANK
from embedrank.model.kinds.sparse import SPARSE

REGISTRY: dict[ModelKind, Kind] = {k.kind: k for k in (EMBEDDING, RERANK, CLASSIFICATION, SPARSE, MULTI_VECTOR, HYBRID)}


def kind_of(kind: ModelKind) -> Kind:
    return REGISTRY[kind]


__all__ = ["REGISTRY", "Kind", "ModelKind", "kind_of"]
