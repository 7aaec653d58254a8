"""The exporter's kind registry: one module per model kind (embedding.py, rerank.py, classification.py).

``detect`` asks each kind in turn whether a checkpoint is of it (the more specific kinds first,
dense embeddings last as the fallback); ``export_kind`` finds a kind's module.
"""

from __future__ import annotations

from pathlib import Path

from embedrank.exporter.kinds.base import ExportKind
from embedrank.exporter.kinds.causal import CAUSAL_RERANK
from embedrank.exporter.kinds.classification import CLASSIFICATION
from embedrank.exporter.kinds.embedding import EMBEDDING
from embedrank.exporter.kinds.hybrid import HYBRID
from embedrank.exporter.kinds.multivector import MULTI_VECTOR_EXPORT
from embedrank.exporter.kinds.rerank import RERANK
from embedrank.exporter.kinds.sparse import SPARSE
from embedrank.model.kinds import ModelKind

# In the order ``detect`` asks them. A kind with variants lists them before its general module (the
# causal-LM rerankers before the sequence-classification ones), which comes last of its kind.
KINDS: tuple[ExportKind, ...] = (HYBRID, SPARSE, MULTI_VECTOR_EXPORT, CAUSAL_RERANK, CLASSIFICATION, RERANK, EMBEDDING)


def export_kind(kind: ModelKind, path: Path | None = None) -> ExportKind:
    """The kind's exporter: the variant that recognises the local checkpoint at ``path``, else the kind's
    general module."""
    modules = [k for k in KINDS if k.kind is kind]
    if path is not None and path.is_dir():
        return next((k for k in modules[:-1] if k.recognises(path)), modules[-1])
    return modules[-1]


def detect(path: Path) -> ModelKind:
    """The kind of the local checkpoint at ``path``."""
    return next(k.kind for k in KINDS if k.recognises(path))


__all__ = ["KINDS", "ExportKind", "detect", "export_kind"]
