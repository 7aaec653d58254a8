"""The multi-vector (ColBERT) facade: the model's query/document handling, one matrix per text,
and MaxSim reranking (Rerank on a multi-vector model)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from embedrank.model.errors import EmptyInput, InvalidArgument
from embedrank.model.kinds.multivector import (
    MultiVectorSpec, Task, encode, expansion_ids, kept, maxsim, task_tokenizer,
)
from embedrank.model.runtime.base import TokenSeq
from embedrank.model.tokenize import TextTokenizer, Truncate
from embedrank.server.engine.postprocess import OutputPrecision, check_precision, quantize
from embedrank.server.engine.requests import InputType, LongInput, Ranked, RerankParams, RerankResult, Timing, Usage
from embedrank.server.engine.served import ServedModel, check_texts, is_blank
from embedrank.server.engine.sparse import pick_prompt

_TASK = {InputType.QUERY: Task.QUERY, InputType.DOCUMENT: Task.DOCUMENT, InputType.DEFAULT: Task.NONE}


@dataclasses.dataclass(frozen=True)
class MultiVectorParams:
    texts: list[str]
    input_type: InputType = InputType.DEFAULT
    prompt_name: str = ""
    truncate: Truncate = Truncate.END
    precision: OutputPrecision = OutputPrecision.FLOAT32


@dataclasses.dataclass(frozen=True)
class MultiVectorResult:
    vectors: list[np.ndarray]  # per text [n_i, dimensions]: float32, or as `precision` (packed bits: dimensions / 8)
    dimensions: int
    token_counts: list[int]
    truncated: list[bool]
    usage: Usage
    precision: OutputPrecision = OutputPrecision.FLOAT32


class MultiVectorModel(ServedModel):
    @property
    def spec(self) -> MultiVectorSpec:
        return self.manifest.spec_as(MultiVectorSpec)

    def _batch_fn(self):  # type: ignore[no-untyped-def]
        runtime = self.runtime

        def run(batch: Sequence[TokenSeq], lone: bool) -> list[np.ndarray]:
            out = runtime.run(batch, lone=lone)["token_embeddings"]
            return [out[i, : seq.length] for i, seq in enumerate(batch)]

        return run

    async def _vectors(
        self, texts: list[str], task: Task, *, prompt: str, truncate: Truncate, field: str, chars: int,
        deadline: float | None, request_id: str,
    ) -> tuple[list[np.ndarray], list[TokenSeq], list[bool], Usage]:
        spec = self.spec
        inputs = [prompt + t for t in texts] if prompt else texts

        def tokenize(items: Sequence[str]) -> tuple[list[TokenSeq], list[bool]]:
            return encode(spec, self.tokenizer, items, task, truncate=truncate, field=field)

        results, seqs, truncated, usage = await self.run(
            inputs, truncate=truncate, field=field, chars=chars, deadline=deadline, request_id=request_id,
            tokenize=tokenize,
        )
        vectors = [np.ascontiguousarray(rows[kept(spec, seq, task)], dtype=np.float32) for rows, seq in zip(results, seqs)]
        return vectors, seqs, truncated, usage

    # Tokenize's hooks: the prompt, the task's length and the query expansion exactly as _vectors' `encode`
    # runs them (the same kind functions), so Tokenize and EncodeMultiVector read the same tokens. The
    # skiplist is not here: it drops output vectors of tokens the model has read, not input tokens.
    def prompt_for(self, input_type: InputType, prompt_name: str) -> str:
        spec = self.spec
        return pick_prompt(spec.prompts, spec.default_prompt_name, input_type=input_type, prompt_name=prompt_name,
                           model=self.name)

    def tokenizer_for(self, input_type: InputType) -> TextTokenizer:
        return task_tokenizer(self.spec, self.tokenizer, _TASK[input_type])

    def appended_for(self, input_type: InputType, length: int) -> list[int]:
        return expansion_ids(self.spec, length, _TASK[input_type])

    async def encode_multi_vector(
        self, params: MultiVectorParams, *, deadline: float | None, request_id: str
    ) -> MultiVectorResult:
        chars = check_texts(params.texts, "texts", self.limits)
        spec = self.spec
        check_precision(params.precision, spec.ranges, model=self.name)
        prompt = self.prompt_for(params.input_type, params.prompt_name)
        vectors, seqs, truncated, usage = await self._vectors(
            params.texts, _TASK[params.input_type], prompt=prompt, truncate=params.truncate, field="texts",
            chars=chars, deadline=deadline, request_id=request_id,
        )
        if params.precision is not OutputPrecision.FLOAT32:
            vectors = [quantize(v, params.precision, spec.ranges, model=self.name) for v in vectors]
        return MultiVectorResult(vectors=vectors, dimensions=spec.dimensions, token_counts=[s.length for s in seqs],
                                 truncated=truncated, usage=usage, precision=params.precision)

    async def rerank(self, params: RerankParams, *, deadline: float | None, request_id: str) -> RerankResult:
        """Documents by MaxSim against the query, as MultiVectorEncoder.similarity(encode_query, encode_document)."""
        if is_blank(params.query):
            raise EmptyInput("query", "is empty (only whitespace, control or zero-width characters)")
        if len(params.query) > self.limits.max_chars:
            raise InvalidArgument("query", f"has {len(params.query)} characters, over the limit of {self.limits.max_chars}")
        chars = check_texts(params.documents, "documents", self.limits)
        if params.top_k is not None and params.top_k < 0:
            raise InvalidArgument("top_k", f"{params.top_k} is negative; leave it unset for all documents")
        if params.long_input is LongInput.CHUNK:
            raise InvalidArgument("long_input", "LONG_INPUT_CHUNK is not served for multi-vector models (MaxSim "
                                  "already reads the whole document up to its length); leave it unset")
        query, _, _, q_usage = await self._vectors(
            [params.query], Task.QUERY, prompt=self.prompt_for(InputType.QUERY, ""), truncate=params.truncate,
            field="query", chars=len(params.query), deadline=deadline, request_id=request_id,
        )
        docs, seqs, truncated, d_usage = await self._vectors(
            params.documents, Task.DOCUMENT, prompt=self.prompt_for(InputType.DOCUMENT, ""), truncate=params.truncate,
            field="documents", chars=chars, deadline=deadline, request_id=request_id,
        )
        mean = self.spec.similarity_fn == "meanmaxsim"
        scores = np.array([maxsim(query[0], d, mean=mean) for d in docs], dtype=np.float32)
        order = np.argsort(-scores, kind="stable")
        if params.top_k is not None:
            order = order[: params.top_k]
        ranked = [
            Ranked(index=int(i), score=float(scores[i]), label_scores=[], truncated=truncated[i],
                   token_count=seqs[i].length, document=params.documents[i] if params.return_documents else None)
            for i in order
        ]
        qt, dt = q_usage.timing, d_usage.timing
        usage = dataclasses.replace(
            d_usage, chars=q_usage.chars + d_usage.chars, tokens=q_usage.tokens + d_usage.tokens,
            timing=Timing(tokenize_ns=qt.tokenize_ns + dt.tokenize_ns, queue_ns=qt.queue_ns + dt.queue_ns,
                          inference_ns=qt.inference_ns + dt.inference_ns, total_ns=qt.total_ns + dt.total_ns),
        )
        return RerankResult(results=ranked, usage=usage)
