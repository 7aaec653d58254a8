"""The runtime interface the engine talks to."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol

import numpy as np


@dataclasses.dataclass(frozen=True, slots=True)
class TokenSeq:
    """One tokenized input, unpadded."""

    ids: np.ndarray  # int64 [length]
    type_ids: np.ndarray | None  # int64 [length]; None = all zeros

    @property
    def length(self) -> int:
        return int(self.ids.shape[0])


class Runtime(Protocol):
    """Runs one batch; padding, input names and providers are its business."""

    @property
    def outputs(self) -> tuple[str, ...]: ...

    @property
    def provider(self) -> str: ...

    def run(self, batch: Sequence[TokenSeq]) -> dict[str, np.ndarray]:
        """Outputs by name, first axis = the batch in order. Thread-safe, blocking."""
        ...

    def health(self) -> bool: ...

    def trim(self) -> None:
        """Give memory that past batches freed back to the system (called when the model goes idle)."""
        ...
