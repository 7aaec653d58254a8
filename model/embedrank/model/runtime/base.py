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
    # Leading tokens the model attends to; the rest are fed with attention_mask 0 (ColBERT's query
    # expansion tokens). None = all of them.
    attended: int | None = None

    @property
    def length(self) -> int:
        return int(self.ids.shape[0])


def pad_batch(
    batch: Sequence[TokenSeq], pad_id: int, *, with_type_ids: bool, width: int = 0
) -> dict[str, np.ndarray]:
    """Right-padded input_ids, attention_mask (and token_type_ids) of one batch, ``width`` tokens
    wide (0 = the longest input). A lone input at its own length is fed as views, no copies."""
    rows, longest = len(batch), max(seq.length for seq in batch)
    width = max(width, longest)
    if rows == 1 and width == longest and batch[0].attended is None:
        ids = batch[0].ids.reshape(1, -1)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if with_type_ids:
            types = batch[0].type_ids
            feed["token_type_ids"] = np.zeros_like(ids) if types is None else types.reshape(1, -1)
        return feed
    ids = np.full((rows, width), pad_id, dtype=np.int64)
    mask = np.zeros((rows, width), dtype=np.int64)
    type_ids = np.zeros((rows, width), dtype=np.int64) if with_type_ids else None
    for row, seq in enumerate(batch):
        n = seq.length
        ids[row, :n] = seq.ids
        mask[row, : n if seq.attended is None else seq.attended] = 1
        if type_ids is not None and seq.type_ids is not None:
            type_ids[row, :n] = seq.type_ids
    feed = {"input_ids": ids, "attention_mask": mask}
    if type_ids is not None:
        feed["token_type_ids"] = type_ids
    return feed


class Runtime(Protocol):
    """Runs one batch; padding, input names and providers are its business."""

    @property
    def outputs(self) -> tuple[str, ...]: ...

    @property
    def provider(self) -> str: ...

    def run(self, batch: Sequence[TokenSeq], *, lone: bool = False) -> dict[str, np.ndarray]:
        """Outputs by name, first axis = the batch in order. Thread-safe, blocking. ``lone``: nothing
        else runs now (the runtime may spend the cores on this batch's latency)."""
        ...

    def health(self) -> bool: ...

    def trim(self) -> None:
        """Give memory that past batches freed back to the system (called when the model goes idle)."""
        ...
