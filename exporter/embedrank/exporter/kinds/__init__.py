"""The exporter's kind registry: one module per model kind (embedding.py, rerank.py, classification.py).

``detect`` asks each kind in turn whether a checkpoint is of it (the more specific kinds first,
dense embeddings last as the fallback); ``export_kind`` finds a kind's module.
"""

from __future__ import annotations

from pathlib import Path

from embedrank.exporter.kinds.base import ExportKind
from embedrank.exporter.kinds.classification import CLASSIFICATION
from embedrank.exporter.kinds.embedding import EMBEDDING
from embedrank.exporter.kinds.hybrid import HYBRID
from embedrank.exporter.kinds.multivector import MULTI_VECTOR_EXPORT
from embedrank.exporter.kinds.rerank import RERANK
from embedrank.exporter.kinds.sparse import SPARSE
from embedrank.model.kinds import ModelKind

# In the order ``detect`` asks them.
KINDS: tuple[ExportKind, ...] = (HYBRID, SPARSE, MULTI_VECTOR_EXPORT, CLASSIFICATION, RERANK, EMBEDDING)
_BY_KIND = {k.kind: k for k in KINDS}


def export_kind(kind: ModelKind) -> ExportKind:
    return _BY_KIND[kind]


def detect(path: Path) -> ModelKind:
    """The kind of the local checkpoint at ``path``."""
    return next(k.kind for k in KINDS if k.recognises(path))


__all__ = ["KINDS", "ExportKind", "detect", "export_kind"]
