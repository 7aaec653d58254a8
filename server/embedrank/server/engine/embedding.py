"""The bi-encoder facade: prompts, Encode options, post-processing."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from embedrank.server.engine.chunking import Chunker, check_options, weighted_mean
from embedrank.server.engine.postprocess import OutputPrecision, check_precision, quantize, shape_embeddings
from embedrank.server.engine.requests import EncodeParams, EncodeResult, InputType, LongInput
from embedrank.server.engine.served import ServedModel, check_texts
from embedrank.model.errors import InvalidArgument
from embedrank.model.kinds.embedding import EmbeddingSpec
from embedrank.model.runtime.base import TokenSeq

_DOCUMENT_PROMPTS = ("document", "passage", "corpus")


class EmbeddingModel(ServedModel):
    @property
    def spec(self) -> EmbeddingSpec:
        return self.manifest.spec_as(EmbeddingSpec)

    def _batch_fn(self):  # type: ignore[no-untyped-def]
        runtime = self.runtime
        has_pooled = "pooled_embedding" in runtime.outputs

        def run(batch: Sequence[TokenSeq], lone: bool) -> list[tuple[np.ndarray, np.ndarray | None]]:
            out = runtime.run(batch, lone=lone)
            final = out["sentence_embedding"]
            pooled = out["pooled_embedding"] if has_pooled else None
            return [(final[i], None if pooled is None else pooled[i]) for i in range(len(batch))]

        return run

    def prompt(self, params: EncodeParams) -> str:
        return self.prompt_for(params.input_type, params.prompt_name)

    def prompt_for(self, input_type: InputType, prompt_name: str) -> str:
        prompts = self.spec.prompts
        if prompt_name:
            if prompt_name not in prompts:
                known = ", ".join(sorted(prompts)) or "none"
                raise InvalidArgument("prompt_name", f"{prompt_name!r} is not a prompt of {self.name} (known: {known})")
            return prompts[prompt_name]
        if input_type is InputType.QUERY:
            return prompts.get("query", "")
        if input_type is InputType.DOCUMENT:
            return next((prompts[p] for p in _DOCUMENT_PROMPTS if p in prompts), "")
        if self.spec.default_prompt_name:
            return prompts.get(self.spec.default_prompt_name, "")
        return ""

    async def encode_as(
        self, params: EncodeParams, precisions: Sequence[OutputPrecision], *, deadline: float | None, request_id: str
    ) -> tuple[EncodeResult, dict[OutputPrecision, np.ndarray]]:
        """One forward pass, the vectors in several precisions: each one what ``encode`` answers for that
        precision (the same float32 rows through the same ``quantize``). Refused before any work when a
        precision needs calibration ranges the model lacks."""
        for precision in precisions:
            check_precision(precision, self.spec.ranges, model=self.name)
        result = await self.encode(
            dataclasses.replace(params, precision=OutputPrecision.FLOAT32), deadline=deadline, request_id=request_id
        )
        return result, {p: quantize(result.embeddings, p, self.spec.ranges, model=self.name) for p in precisions}

    async def encode(self, params: EncodeParams, *, deadline: float | None, request_id: str) -> EncodeResult:
        spec = self.spec
        chars = check_texts(params.texts, "texts", self.limits)
        if params.dimensions > spec.dimensions:
            raise InvalidArgument("dimensions", f"{params.dimensions} is over the model's {spec.dimensions}")
        check_precision(params.precision, spec.ranges, model=self.name)
        check_options(
            params.long_input, truncate=params.truncate, overlap=params.chunk_overlap, return_chunks=params.return_chunks
        )
        prompt = self.prompt(params)
        chunker = None
        if params.long_input is LongInput.CHUNK:
            chunker = Chunker(
                self.tokenizer, overlap=params.chunk_overlap, limits=self.limits.chunks,
                truncate=params.truncate, field="texts", prefix=prompt,
            )
            texts = params.texts  # the chunker adds the prompt to every window
        else:
            texts = [prompt + t for t in params.texts] if prompt else params.texts
        results, seqs, truncated, usage = await self.run(
            texts, truncate=params.truncate, field="texts", chars=chars, deadline=deadline, request_id=request_id,
            tokenize=chunker,
        )
        normalize = spec.normalize if params.normalize is None else params.normalize
        if normalize or not spec.normalize:
            # The graph's final output; normalizing it again is a no-op for normalized models.
            matrix = np.stack([final for final, _ in results])
        else:
            # The model normalizes, the caller asked not to: the output before Normalize.
            matrix = np.stack([pooled if pooled is not None else final for final, pooled in results])
        dims = params.dimensions or spec.dimensions
        # The model's output is already normalized unless it is cut (or the model does not normalize).
        renormalize = normalize and (dims < spec.dimensions or not spec.normalize)
        if chunker is None:
            shaped = shape_embeddings(matrix, dimensions=dims, normalize=renormalize)
            return EncodeResult(
                embeddings=quantize(shaped, params.precision, spec.ranges, model=self.name),
                dimensions=dims,
                precision=params.precision,
                token_counts=[s.length for s in seqs],
                truncated=truncated,
                usage=usage,
            )
        n = len(params.texts)
        owners = chunker.owners()
        lengths = np.array([s.length for s in seqs], dtype=np.int64)
        # A mean of unit vectors is shorter than one: re-normalize whenever normalizing.
        mean = weighted_mean(matrix, owners, lengths, n)
        shaped = shape_embeddings(mean, dimensions=dims, normalize=normalize)
        chunk_rows = None
        if params.return_chunks:
            chunk_rows = quantize(
                shape_embeddings(matrix, dimensions=dims, normalize=renormalize), params.precision, spec.ranges,
                model=self.name,
            )
        cut = np.zeros(n, dtype=bool)
        np.logical_or.at(cut, owners, np.asarray(truncated, dtype=bool))
        return EncodeResult(
            embeddings=quantize(shaped, params.precision, spec.ranges, model=self.name),
            dimensions=dims,
            precision=params.precision,
            token_counts=np.bincount(owners, weights=lengths, minlength=n).astype(np.int64).tolist(),
            truncated=cut.tolist(),
            usage=usage,
            chunk_counts=np.bincount(owners, minlength=n).tolist(),
            chunk_embeddings=chunk_rows,
            chunks=chunker.chunks if params.return_chunks else [],
        )
