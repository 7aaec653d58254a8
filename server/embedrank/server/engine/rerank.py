"""The cross-encoder facade: (query, document) pairs, activation, ranking."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from embedrank.server.engine.chunking import Chunker, best_rows, check_options
from embedrank.server.engine.requests import LongInput, Ranked, RerankParams, RerankResult, ScoreMode
from embedrank.server.engine.served import ServedModel, check_texts, is_blank
from embedrank.model.errors import EmptyInput, InvalidArgument
from embedrank.model.kinds.rerank import RerankSpec, activate
from embedrank.model.runtime.base import TokenSeq


class RerankModel(ServedModel):
    @property
    def spec(self) -> RerankSpec:
        return self.manifest.spec_as(RerankSpec)

    def _batch_fn(self):  # type: ignore[no-untyped-def]
        runtime = self.runtime

        def run(batch: Sequence[TokenSeq], lone: bool) -> np.ndarray:
            return runtime.run(batch, lone=lone)["logits"]

        return run

    async def rerank(self, params: RerankParams, *, deadline: float | None, request_id: str) -> RerankResult:
        if is_blank(params.query):
            raise EmptyInput("query", "is empty (only whitespace, control or zero-width characters)")
        if len(params.query) > self.limits.max_chars:
            raise InvalidArgument(
                "query", f"has {len(params.query)} characters, over the limit of {self.limits.max_chars}"
            )
        chars = check_texts(params.documents, "documents", self.limits) + len(params.query) * len(params.documents)
        if params.top_k is not None and params.top_k < 0:
            raise InvalidArgument("top_k", f"{params.top_k} is negative; leave it unset for all documents")
        check_options(params.long_input, truncate=params.truncate, overlap=params.chunk_overlap)
        chunker = None
        if params.long_input is LongInput.CHUNK:
            chunker = Chunker(
                self.tokenizer, overlap=params.chunk_overlap, limits=self.limits.chunks,
                truncate=params.truncate, field="documents", query=params.query,
            )
        pairs = [(params.query, doc) for doc in params.documents]
        results, seqs, truncated, usage = await self.run(
            pairs if chunker is None else params.documents, truncate=params.truncate, field="documents", chars=chars,
            deadline=deadline, request_id=request_id, tokenize=chunker,
        )
        logits = np.stack(results).astype(np.float32)
        scores = logits if params.scores is ScoreMode.RAW else activate(logits, self.spec.activation)
        n = len(params.documents)
        token_counts = [s.length for s in seqs]
        spans: list[tuple[int, int] | None] = [None] * n
        chunk_counts = [0] * n
        if chunker is not None:
            # MaxP: each document is its best window (by the returned label-0 score).
            owners = chunker.owners()
            best = best_rows(scores[:, 0], owners, n)
            lengths = np.array(token_counts, dtype=np.int64)
            token_counts = np.bincount(owners, weights=lengths, minlength=n).astype(np.int64).tolist()
            cut = np.zeros(n, dtype=bool)
            np.logical_or.at(cut, owners, np.asarray(truncated, dtype=bool))
            truncated = cut.tolist()
            chunk_counts = np.bincount(owners, minlength=n).tolist()
            spans = [(chunker.chunks[b].start, chunker.chunks[b].end) for b in best]
            scores = scores[best]
        # Stable sort, highest first; ties keep request order.
        order = np.argsort(-scores[:, 0], kind="stable")
        if params.top_k is not None:
            order = order[: params.top_k]
        ranked = [
            Ranked(
                index=int(i),
                score=float(scores[i, 0]),
                label_scores=[float(v) for v in scores[i]] if scores.shape[1] > 1 else [],
                truncated=truncated[i],
                token_count=token_counts[i],
                document=params.documents[i] if params.return_documents else None,
                span=spans[i],
                chunk_count=chunk_counts[i],
            )
            for i in order
        ]
        return RerankResult(results=ranked, usage=usage)
