"""Sequence classifiers (sentiment, topics, NLI): a score per label for each text or text pair.

A CrossEncoder or ``*ForSequenceClassification`` checkpoint with more than one label. Single-label
problems (one class per input) are scored with softmax, multi-label ones (any number of classes per
input) with sigmoid; the raw logits are there on request. The labels are the checkpoint's
``id2label`` names.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from typing import Any

import numpy as np

from embedrank.model.errors import ManifestError
from embedrank.model.jsonread import Reader
from embedrank.model.kinds.base import Kind, ModelKind
from embedrank.model.kinds.rerank import Activation


class ProblemType(enum.Enum):
    SINGLE_LABEL = "single_label"  # one class per input: softmax
    MULTI_LABEL = "multi_label"  # independent labels: sigmoid


@dataclasses.dataclass(frozen=True)
class ClassificationSpec:
    labels: tuple[str, ...]  # by output index
    problem_type: ProblemType
    activation: Activation

    @property
    def num_labels(self) -> int:
        return len(self.labels)


class ClassificationKind(Kind):
    kind = ModelKind.CLASSIFICATION
    output = "logits"
    rpc = "Classify.Classify"
    gates = frozenset({"max_abs_diff", "min_top1_agreement"})

    def parse(self, r: Reader, *, outputs: Sequence[str], where: str) -> ClassificationSpec:
        c = r.sub(self.section)
        labels = c.get("labels", list)
        if not labels or not all(isinstance(x, str) for x in labels):
            raise ManifestError(f"{where}: classification.labels must be a non-empty list of label names")
        num_labels = c.get("num_labels", int)
        if num_labels != len(labels):
            raise ManifestError(f"{where}: classification.num_labels is {num_labels} but {len(labels)} labels are named")
        spec = ClassificationSpec(
            labels=tuple(labels),
            problem_type=c.enum("problem_type", ProblemType),
            activation=c.enum("activation", Activation),
        )
        if self.output not in outputs:
            raise ManifestError(f"{where}: a classification graph must output {self.output}")
        return spec

    def check_inputs(self, inputs: Sequence[Any], *, queries: int, where: str) -> None:
        def ok(item: Any) -> bool:
            if isinstance(item, str):
                return bool(item)
            return isinstance(item, (list, tuple)) and len(item) == 2 and all(isinstance(x, str) for x in item)

        if not all(ok(item) for item in inputs):
            raise ManifestError(f"{where}: self_check.inputs of a classifier must be texts or [first, second] pairs")

    def measure(self, reference: np.ndarray, got: np.ndarray, *, queries: int) -> dict[str, float]:
        return {
            "max_abs_diff": float(np.abs(reference - got).max()),
            "top1_agreement": float(np.mean(np.argmax(reference, axis=1) == np.argmax(got, axis=1))),
        }

    def warm_up_inputs(self, max_tokens: int) -> tuple[str, str]:
        return "warm up " * (max_tokens // 2), "warm up"


CLASSIFICATION = ClassificationKind()
