"""What a model kind is: the interface every kind module fills in.

A kind (dense embedding, rerank, ...) is everything about a model version that depends on what
the model computes: its manifest section, the graph output that carries its result, how its
outputs are compared with the reference library's (the load-time self check's figures and gate),
its warm-up inputs and the RPC that serves it. The layers above ask ``kind_of(kind)`` instead of
branching on the kind; each layer keeps its own per-kind module beside it (the exporter's
``embedrank.exporter.kinds``, the engine's served models, the api's servicers).
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Sequence
from typing import Any

import numpy as np

from embedrank.model.jsonread import Reader


class ModelKind(enum.Enum):
    EMBEDDING = "embedding"
    RERANK = "rerank"
    CLASSIFICATION = "classification"


class Kind(abc.ABC):
    kind: ModelKind
    output: str  # the graph output holding the kind's result
    rpc: str  # the RPC that serves this kind, named to a caller who called another
    gates: frozenset[str]  # the self-check gate's keys this kind understands

    @property
    def section(self) -> str:
        """The manifest's key for this kind's section."""
        return self.kind.value

    @abc.abstractmethod
    def parse(self, r: Reader, *, outputs: Sequence[str], where: str) -> Any:
        """The manifest section, typed; ManifestError when it cannot be served."""

    @abc.abstractmethod
    def check_inputs(self, inputs: Sequence[Any], *, queries: int, where: str) -> None:
        """Self-check inputs of this kind; ManifestError when they are malformed."""

    @abc.abstractmethod
    def measure(self, reference: np.ndarray, got: np.ndarray, *, queries: int) -> dict[str, float]:
        """The figures a self-check gate speaks of, from reference and served outputs (rows = inputs)."""

    @abc.abstractmethod
    def warm_up_inputs(self, max_tokens: int) -> tuple[Any, Any]:
        """A long input and a short one, run through the batcher before a model takes calls."""
