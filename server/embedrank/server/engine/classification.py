"""The classifier facade: texts or pairs in, each input's labels sorted by score out."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from embedrank.model.errors import InvalidArgument
from embedrank.model.kinds.classification import ClassificationSpec
from embedrank.model.kinds.rerank import activate
from embedrank.model.runtime.base import TokenSeq
from embedrank.model.tokenize import Truncate
from embedrank.server.engine.requests import ScoreMode, Usage
from embedrank.server.engine.served import ServedModel, check_texts_or_pairs


@dataclasses.dataclass(frozen=True)
class ClassifyParams:
    texts: list[str] = dataclasses.field(default_factory=list)
    pairs: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    top_k: int | None = None
    scores: ScoreMode = ScoreMode.ACTIVATED
    truncate: Truncate = Truncate.END


@dataclasses.dataclass(frozen=True)
class LabelScore:
    index: int
    label: str
    score: float


@dataclasses.dataclass(frozen=True)
class Classification:
    labels: list[LabelScore]  # highest score first
    truncated: bool
    token_count: int


@dataclasses.dataclass(frozen=True)
class ClassifyResult:
    results: list[Classification]
    usage: Usage


class ClassificationModel(ServedModel):
    @property
    def spec(self) -> ClassificationSpec:
        return self.manifest.spec_as(ClassificationSpec)

    def _batch_fn(self):  # type: ignore[no-untyped-def]
        runtime = self.runtime

        def run(batch: Sequence[TokenSeq], lone: bool) -> np.ndarray:
            return runtime.run(batch, lone=lone)["logits"]

        return run

    async def classify(self, params: ClassifyParams, *, deadline: float | None, request_id: str) -> ClassifyResult:
        chars = check_texts_or_pairs(params.texts, params.pairs, self.limits)
        if params.top_k is not None and params.top_k < 1:
            raise InvalidArgument("top_k", f"{params.top_k} asks for no labels; leave it unset for all of them")
        inputs: list[Any] = list(params.pairs) or list(params.texts)
        field = "pairs" if params.pairs else "texts"
        results, seqs, truncated, usage = await self.run(
            inputs, truncate=params.truncate, field=field, chars=chars, deadline=deadline, request_id=request_id
        )
        spec = self.spec
        logits = np.stack(results).astype(np.float32)
        scores = logits if params.scores is ScoreMode.RAW else activate(logits, spec.activation)
        k = spec.num_labels if params.top_k is None else min(params.top_k, spec.num_labels)
        out = []
        for row, seq, cut in zip(scores, seqs, truncated):
            order = np.argsort(-row, kind="stable")[:k]  # ties keep label order
            out.append(Classification(
                labels=[LabelScore(int(i), spec.labels[i], float(row[i])) for i in order],
                truncated=cut,
                token_count=seq.length,
            ))
        return ClassifyResult(out, usage)
