"""Dense embeddings (sentence-transformers' SentenceTransformer): one vector per text."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from embedrank.model.errors import ManifestError
from embedrank.model.jsonread import Reader
from embedrank.model.kinds.base import Kind, ModelKind
from embedrank.model.numeric import cosines


@dataclasses.dataclass(frozen=True)
class QuantizationRanges:
    """Per-dimension [min, max] of the float embeddings, calibrated at export."""

    minimum: tuple[float, ...]
    maximum: tuple[float, ...]


def parse_ranges(section: Reader, *, dimensions: int, where: str) -> QuantizationRanges | None:
    """A kind section's optional ``ranges`` ({"min": [...], "max": [...]}, one value a dimension)."""
    if section.data.get("ranges") is None:
        return None
    q = section.sub("ranges")
    ranges = QuantizationRanges(tuple(q.get("min", list)), tuple(q.get("max", list)))
    if not (len(ranges.minimum) == len(ranges.maximum) == dimensions):
        raise ManifestError(f"{where}: {section.prefix}ranges must have {dimensions} values each")
    return ranges


@dataclasses.dataclass(frozen=True)
class EmbeddingSpec:
    dimensions: int
    pooling: tuple[str, ...]
    normalize: bool
    prompts: dict[str, str]
    default_prompt_name: str | None
    similarity_fn: str
    ranges: QuantizationRanges | None = None


class EmbeddingKind(Kind):
    kind = ModelKind.EMBEDDING
    output = "sentence_embedding"
    rpc = "Embed.Encode"
    gates = frozenset({"min_cosine", "min_mean_cosine"})

    def parse(self, r: Reader, *, outputs: Sequence[str], where: str) -> EmbeddingSpec:
        e = r.sub(self.section)
        dimensions = e.get("dimensions", int)
        spec = EmbeddingSpec(
            dimensions=dimensions,
            pooling=tuple(e.get("pooling", list)),
            normalize=e.get("normalize", bool),
            prompts=dict(e.get("prompts", dict, {})),
            default_prompt_name=e.get("default_prompt_name", str, None),
            similarity_fn=e.get("similarity_fn", str, "cosine"),
            ranges=parse_ranges(e, dimensions=dimensions, where=where),
        )
        if self.output not in outputs:
            raise ManifestError(f"{where}: an embedding graph must output {self.output}")
        return spec

    def check_inputs(self, inputs: Sequence[Any], *, queries: int, where: str) -> None:
        if not all(isinstance(t, str) and t for t in inputs):
            raise ManifestError(f"{where}: self_check.inputs of an embedding model must be texts")

    def measure(self, reference: np.ndarray, got: np.ndarray, *, queries: int) -> dict[str, float]:
        cos = cosines(reference, got)
        return {"min_cosine": float(cos.min()), "mean_cosine": float(cos.mean())}

    def warm_up_inputs(self, max_tokens: int) -> tuple[str, str]:
        return "warm up " * (max_tokens // 2), "warm up"


EMBEDDING = EmbeddingKind()
