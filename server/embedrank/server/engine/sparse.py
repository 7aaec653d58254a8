"""The sparse (SPLADE) facade: prompts, the model's max_active_dims, top_k, token strings, and for an
asymmetric model the route: documents through the graph, queries through the static query weights
(no model runs for those: tokenized and looked up here, without the batcher)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from embedrank.model.errors import InvalidArgument
from embedrank.model.kinds.sparse import SparseSpec, StaticRoute, nonzero_pairs
from embedrank.model.runtime.base import TokenSeq
from embedrank.model.tokenize import TextTokenizer, Truncate
from embedrank.server.engine.requests import InputType, Usage
from embedrank.server.engine.served import ServedModel, check_texts

_DOCUMENT_PROMPTS = ("document", "passage", "corpus")


@dataclasses.dataclass(frozen=True)
class SparseParams:
    texts: list[str]
    input_type: InputType = InputType.DEFAULT
    prompt_name: str = ""
    top_k: int | None = None  # None = every non-zero weight
    return_tokens: bool = False
    truncate: Truncate = Truncate.END


@dataclasses.dataclass(frozen=True)
class SparseVector:
    indices: np.ndarray  # uint32, highest value first
    values: np.ndarray  # float32
    tokens: list[str]  # return_tokens only


@dataclasses.dataclass(frozen=True)
class SparseResult:
    vectors: list[SparseVector]
    dimensions: int
    token_counts: list[int]
    truncated: list[bool]
    usage: Usage


def pick_prompt(prompts: dict[str, str], default_prompt_name: str | None, *, input_type: InputType,
                prompt_name: str, model: str) -> str:
    """The prompt sentence-transformers' encode_query / encode_document / encode would prepend."""
    if prompt_name:
        if prompt_name not in prompts:
            known = ", ".join(sorted(prompts)) or "none"
            raise InvalidArgument("prompt_name", f"{prompt_name!r} is not a prompt of {model} (known: {known})")
        return prompts[prompt_name]
    if input_type is InputType.QUERY:
        return prompts.get("query", "")
    if input_type is InputType.DOCUMENT:
        return next((prompts[p] for p in _DOCUMENT_PROMPTS if p in prompts), "")
    return prompts.get(default_prompt_name, "") if default_prompt_name else ""


class SparseModel(ServedModel):
    @property
    def spec(self) -> SparseSpec:
        return self.manifest.spec_as(SparseSpec)

    def _batch_fn(self):  # type: ignore[no-untyped-def]
        runtime = self.runtime
        k = self.spec.max_active_dims

        def run(batch: Sequence[TokenSeq], lone: bool) -> list[tuple[np.ndarray, np.ndarray]]:
            out = runtime.run(batch, lone=lone)["sparse_embedding"]
            # On the worker thread: the (index, value) pairs, not vocabulary-wide rows, go back.
            return [nonzero_pairs(out[i], max_active_dims=k) for i in range(len(batch))]

        return run

    def _route(self, input_type: InputType) -> StaticRoute | None:
        """The query route for texts it serves (QUERY, or no input type when it is the default), else None:
        the graph. A Router model without a default route refuses a request that gives no input type."""
        spec = self.spec
        try:
            route = spec.route(input_type.value)
        except ValueError:
            raise InvalidArgument(
                "input_type", f"{self.name} encodes queries and documents differently and has no default route; "
                "set it to QUERY or DOCUMENT"
            ) from None
        return spec.query if route == "query" else None

    def prompt_for(self, input_type: InputType, prompt_name: str) -> str:
        spec = self.spec
        return pick_prompt(spec.prompts, spec.default_prompt_name, input_type=input_type, prompt_name=prompt_name,
                           model=self.name)

    def tokenizer_for(self, input_type: InputType) -> TextTokenizer:
        """The query route's tokenizer (no special tokens, its own max length and file) for the texts it
        serves, else the graph's."""
        route = self._route(input_type)
        return self.tokenizer if route is None else route.loaded()[1]

    async def encode_sparse(self, params: SparseParams, *, deadline: float | None, request_id: str) -> SparseResult:
        spec = self.spec
        chars = check_texts(params.texts, "texts", self.limits)
        if params.top_k is not None and params.top_k < 0:
            raise InvalidArgument("top_k", f"{params.top_k} is negative; leave it unset for every non-zero weight")
        route = self._route(params.input_type)
        prompt = self.prompt_for(params.input_type, params.prompt_name)
        texts = [prompt + t for t in params.texts] if prompt else params.texts
        tokenizer = self.tokenizer_for(params.input_type)
        if route is None:
            results, seqs, truncated, usage = await self.run(
                texts, truncate=params.truncate, field="texts", chars=chars, deadline=deadline, request_id=request_id
            )
        else:  # the query route: its tokenizer, then each distinct token's weight, without the batcher
            k = spec.max_active_dims
            results, seqs, truncated, usage = await self.run(
                texts, truncate=params.truncate, field="texts", chars=chars, deadline=deadline, request_id=request_id,
                tokenize=lambda xs: tokenizer.encode(xs, truncate=params.truncate, field="texts"),
                compute=lambda seqs: [nonzero_pairs(route.row(seq), max_active_dims=k) for seq in seqs],
            )
        vectors = []
        for indices, values in results:
            if params.top_k is not None:
                indices, values = indices[: params.top_k], values[: params.top_k]
            tokens = [tokenizer.id_to_token(int(i)) for i in indices] if params.return_tokens else []
            vectors.append(SparseVector(indices, values, tokens))
        return SparseResult(
            vectors=vectors, dimensions=spec.dimensions, token_counts=[s.length for s in seqs],
            truncated=truncated, usage=usage,
        )
