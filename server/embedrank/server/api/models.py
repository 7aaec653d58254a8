"""embedrank.v1.Models: what the server has loaded."""

from __future__ import annotations

import copy
import json
import os
from pathlib import PurePath
from collections.abc import Callable
from typing import Any

import grpc

from embedrank.server.api.convert import PRECISION_TO_PROTO
from embedrank.server.api.status import guarded, request_id
from embedrank.server.engine.engine import Engine
from embedrank.server.engine.postprocess import OutputPrecision
from embedrank.server.engine.served import ServedModel
from embedrank.model.kinds import REGISTRY, ModelKind
from embedrank.model.kinds.classification import ClassificationSpec
from embedrank.model.kinds.embedding import EmbeddingSpec, QuantizationRanges
from embedrank.model.kinds.hybrid import HybridSpec
from embedrank.model.kinds.multivector import MULTI_VECTOR, MultiVectorSpec
from embedrank.model.kinds.rerank import RerankSpec
from embedrank.model.kinds.sparse import SparseSpec
from embedrank.v1 import models_pb2, models_pb2_grpc


def _output_precisions(info: models_pb2.ModelInfo, ranges: QuantizationRanges | None) -> None:
    """Every precision; int8/uint8 only with calibration ranges."""
    precisions = [p for p in OutputPrecision if ranges is not None or p not in (OutputPrecision.INT8, OutputPrecision.UINT8)]
    info.output_precisions.extend(PRECISION_TO_PROTO[p] for p in precisions)


def _embedding_info(info: models_pb2.ModelInfo, e: EmbeddingSpec) -> None:
    info.dimensions = e.dimensions
    info.pooling = ",".join(e.pooling)
    info.prompts.update(e.prompts)
    info.default_prompt_name = e.default_prompt_name or ""
    info.similarity_fn = e.similarity_fn
    info.normalize = e.normalize
    _output_precisions(info, e.ranges)


def _rerank_info(info: models_pb2.ModelInfo, r: RerankSpec) -> None:
    info.num_labels = r.num_labels
    info.activation = r.activation.value


def _classification_info(info: models_pb2.ModelInfo, c: ClassificationSpec) -> None:
    info.num_labels = c.num_labels
    info.activation = c.activation.value
    info.labels.extend(c.labels)
    info.problem_type = c.problem_type.value


def _sparse_info(info: models_pb2.ModelInfo, s: SparseSpec) -> None:
    info.dimensions = s.dimensions
    info.prompts.update(s.prompts)
    info.default_prompt_name = s.default_prompt_name or ""
    info.similarity_fn = s.similarity_fn
    info.sparse_pooling = s.pooling
    info.sparse_activation = s.activation
    info.max_active_dims = s.max_active_dims or 0


def _multi_vector_info(info: models_pb2.ModelInfo, m: MultiVectorSpec) -> None:
    info.dimensions = m.dimensions
    info.prompts.update(m.prompts)
    info.default_prompt_name = m.default_prompt_name or ""
    info.similarity_fn = m.similarity_fn
    info.normalize = m.normalize
    info.query_length = m.query_length or 0
    info.document_length = m.document_length or 0
    info.query_expansion_length = m.expansion.length if m.expansion is not None else 0
    _output_precisions(info, m.ranges)


def _hybrid_info(info: models_pb2.ModelInfo, h: HybridSpec) -> None:
    info.dimensions = h.dimensions  # the dense vector's (the ColBERT vectors' is in the manifest's section)
    info.prompts.update(h.prompts)
    info.default_prompt_name = h.default_prompt_name or ""
    info.similarity_fn = "dot"
    info.normalize = True
    _output_precisions(info, None)


# Per kind: its ModelKind enum value and the ModelInfo fields its manifest section fills.
_KINDS: dict[ModelKind, tuple[models_pb2.ModelKind, Callable[[models_pb2.ModelInfo, Any], None]]] = {
    ModelKind.EMBEDDING: (models_pb2.MODEL_KIND_EMBEDDING, _embedding_info),
    ModelKind.RERANK: (models_pb2.MODEL_KIND_RERANK, _rerank_info),
    ModelKind.CLASSIFICATION: (models_pb2.MODEL_KIND_CLASSIFICATION, _classification_info),


    ModelKind.SPARSE: (models_pb2.MODEL_KIND_SPARSE, _sparse_info),
    ModelKind.MULTI_VECTOR: (models_pb2.MODEL_KIND_MULTI_VECTOR, _multi_vector_info),
    ModelKind.HYBRID: (models_pb2.MODEL_KIND_HYBRID, _hybrid_info),
}


# The manifest's sections a caller sees; anything else (e.g. a self-check's reference vectors) stays on disk.
_PUBLIC_SECTIONS: tuple[str, ...] = ("format", "name", "version", "kind", "created", "source", "graph", "tokenizer", "fidelity", "embedding", "rerank")
_PUBLIC_SECTIONS += tuple(k.section for k in REGISTRY.values() if k.section not in _PUBLIC_SECTIONS)  # every kind's


def public_manifest(raw: dict[str, Any]) -> dict[str, Any]:
    """The manifest as callers see it: what the model is, how it was built and how faithful it is.

    Not the exporting machine's paths (a local source becomes its folder name) nor the int8
    calibration arrays (``ranges_calibrated`` says whether there are some); they stay on disk.
    """
    public: dict[str, Any] = {k: copy.deepcopy(raw[k]) for k in _PUBLIC_SECTIONS if k in raw}
    source = public.get("source")
    if isinstance(source, dict) and "path" in source:
        path = str(source.pop("path"))
        local = os.path.isabs(path) or path.startswith(("~", "./", "../"))
        source["name"] = PurePath(path).name if local else path  # a hub id stays as it is
    for section in ("embedding", MULTI_VECTOR.section):
        spec = public.get(section)
        if isinstance(spec, dict) and "ranges" in spec:
            spec["ranges_calibrated"] = spec.pop("ranges") is not None
    return public


def model_info(model: ServedModel) -> models_pb2.ModelInfo:
    m = model.manifest
    proto_kind, fill = _KINDS[m.kind]
    info = models_pb2.ModelInfo(
        name=m.name,
        version=str(m.version),
        kind=proto_kind,
        max_tokens=m.tokenizer.max_tokens,
        graph_precision=m.graph.precision,
        manifest_json=json.dumps(public_manifest(m.raw), sort_keys=True),
    )
    fill(info, m.spec)
    return info


class ModelsServicer(models_pb2_grpc.ModelsServicer):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def ListModels(  # noqa: N802 (gRPC method name)
        self, request: models_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> models_pb2.ListModelsResponse:
        async def body() -> models_pb2.ListModelsResponse:
            return models_pb2.ListModelsResponse(
                models=[model_info(m) for _, m in sorted(self._engine.models.items())]
            )

        return await guarded(context, request_id(), body, rpc="ListModels")

    async def GetModel(  # noqa: N802
        self, request: models_pb2.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> models_pb2.ModelInfo:
        async def body() -> models_pb2.ModelInfo:
            return model_info(self._engine.get(request.name))

        return await guarded(context, request_id(), body, rpc="GetModel")
