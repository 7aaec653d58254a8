"""The engine's per-kind registry: the served model (facade) of each model kind.

A new kind adds its facade module beside embedding.py and rerank.py, and one line here.
"""

from __future__ import annotations

from embedrank.model.kinds import ModelKind
from embedrank.server.engine.classification import ClassificationModel
from embedrank.server.engine.embedding import EmbeddingModel
from embedrank.server.engine.hybrid import HybridModel
from embedrank.server.engine.multivector import MultiVectorModel
from embedrank.server.engine.rerank import RerankModel
from embedrank.server.engine.served import ServedModel
from embedrank.server.engine.sparse import SparseModel

SERVED: dict[ModelKind, type[ServedModel]] = {
    ModelKind.EMBEDDING: EmbeddingModel,
    ModelKind.RERANK: RerankModel,
    ModelKind.CLASSIFICATION: ClassificationModel,
    ModelKind.SPARSE: SparseModel,
    ModelKind.MULTI_VECTOR: MultiVectorModel,
    ModelKind.HYBRID: HybridModel,
}


def served_class(kind: ModelKind) -> type[ServedModel]:
    return SERVED[kind]
