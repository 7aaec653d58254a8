"""Plain results the client returns."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class RerankHit:
    index: int
    score: float
    document: str | None = None
    truncated: bool = False


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    kind: str
    dimensions: int
    max_tokens: int
    similarity_fn: str
    prompts: dict[str, str]
    graph_precision: str
