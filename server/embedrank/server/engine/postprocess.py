"""Embedding post-processing: normalize, Matryoshka truncation and output quantization.

Quantization matches sentence_transformers.quantize_embeddings given the same ranges; the
ranges are fixed per model at export (manifest), never computed from a request's batch.
"""

from __future__ import annotations

import enum

import numpy as np

from embedrank.model.errors import FailedPrecondition
from embedrank.model.kinds.embedding import QuantizationRanges


class OutputPrecision(enum.Enum):
    FLOAT32 = "float32"
    INT8 = "int8"
    UINT8 = "uint8"
    BINARY = "binary"
    UBINARY = "ubinary"


def l2_normalize(x: np.ndarray) -> np.ndarray:
    # Same clamp as torch.nn.functional.normalize (eps 1e-12).
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    out: np.ndarray = (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    return out


def shape_embeddings(x: np.ndarray, *, dimensions: int, normalize: bool) -> np.ndarray:
    """Cut to the first ``dimensions`` (0 = all), then L2-normalize if asked (in that order)."""
    if dimensions and dimensions < x.shape[1]:
        x = x[:, :dimensions]
    return l2_normalize(x) if normalize else np.ascontiguousarray(x, dtype=np.float32)


def check_precision(precision: OutputPrecision, ranges: QuantizationRanges | None, *, model: str) -> None:
    """int8/uint8 need the model's calibration ranges; refuse before any work is done."""
    if precision in (OutputPrecision.INT8, OutputPrecision.UINT8) and ranges is None:
        raise FailedPrecondition(
            f"model {model} has no calibration ranges for {precision.value} output; re-export it with "
            "`embedrank export` (which calibrates them) or ask for float32/binary/ubinary"
        )


def quantize(
    x: np.ndarray, precision: OutputPrecision, ranges: QuantizationRanges | None, *, model: str
) -> np.ndarray:
    check_precision(precision, ranges, model=model)
    if precision is OutputPrecision.FLOAT32:
        return x.astype("<f4", copy=False)
    if precision is OutputPrecision.BINARY:
        return (np.packbits(x > 0, axis=-1) - 128).astype(np.int8)
    if precision is OutputPrecision.UBINARY:
        return np.packbits(x > 0, axis=-1)
    assert ranges is not None
    dims = x.shape[1]
    starts = np.asarray(ranges.minimum[:dims], dtype=np.float32)
    steps = (np.asarray(ranges.maximum[:dims], dtype=np.float32) - starts) / 255
    steps = np.where(steps == 0, 1, steps)
    values = np.clip(np.floor((x - starts) / steps), 0, 255)
    if precision is OutputPrecision.UINT8:
        return values.astype(np.uint8)
    return (values - 128).astype(np.int8)
