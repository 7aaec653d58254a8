"""What every served model shares: input checks, tokenizing, admission, batching, timing."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import dataclasses
import itertools
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from embedrank.server import metrics
from embedrank.server.engine import observe
from embedrank.server.engine.batcher import Batcher, BatchFn, BatchLimits, WorkItem
from embedrank.server.engine.chunking import Chunker, ChunkLimits
from embedrank.server.engine.requests import InputType, Timing, Usage
from embedrank.server.engine.tokens import DecodeResult, TokenizeParams, TokenizeResult, check_ids, tokens_of
from embedrank.model.tokenize import TextTokenizer, Truncate
from embedrank.model.errors import DeadlineExceeded, EmptyInput, InvalidArgument, ResourceExhausted
from embedrank.model.kinds import kind_of
from embedrank.model.manifest import Manifest
from embedrank.model.runtime.base import Runtime, TokenSeq

_groups = itertools.count()

# The caller a request's inputs are queued under, for the batcher's round robin: every
# request of one stream shares one (see ``one_caller``); a unary request gets its own.
_caller: contextvars.ContextVar[int | None] = contextvars.ContextVar("embedrank_caller", default=None)


def one_caller() -> None:
    """From here on in this task (and the tasks it starts), requests queue as one caller: the
    batcher then favours the oldest of them, so a stream's head is never starved by its tail."""
    _caller.set(next(_groups))

# A replacement tokenize step: inputs -> (sequences, truncated flags), any number of sequences.
TokenizeFn = Callable[[Sequence[Any]], tuple[list[TokenSeq], list[bool]]]
ComputeFn = Callable[[list[TokenSeq]], list[Any]]

# Below this many characters a request is tokenized on the event loop: handing it to a
# thread would cost more than the tokenizing.
INLINE_TOKENIZE_CHARS = 2048


@dataclasses.dataclass(frozen=True)
class Limits:
    max_inputs: int
    max_chars: int
    batch: BatchLimits
    chunks: ChunkLimits = ChunkLimits()


class Admission:
    """Bounds inputs in flight across all models; over the bound, refuse at once."""

    def __init__(self, max_inputs: int) -> None:
        self.max_inputs = max_inputs
        self.in_flight = 0

    def acquire(self, n: int) -> None:
        if self.in_flight + n > self.max_inputs:
            raise ResourceExhausted(
                f"server busy: {self.in_flight} inputs in flight, limit {self.max_inputs}; retry with backoff"
            )
        self.in_flight += n
        metrics.IN_FLIGHT.set(self.in_flight)

    def release(self, n: int) -> None:
        self.in_flight -= n
        metrics.IN_FLIGHT.set(self.in_flight)


# What a text must contain to be non-empty: a character that is not whitespace, a control
# character (NUL and friends) or an invisible format character (zero-width space/joiners,
# word joiner, BOM, bidi marks). One definition, used for every text field.
_VISIBLE = re.compile(r"[^\s\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]")


def is_blank(text: str) -> bool:
    """True for a text with nothing a model could read: empty, whitespace, control or zero-width only."""
    return _VISIBLE.search(text) is None


def check_texts(texts: Sequence[str], field: str, limits: Limits) -> int:
    """Empty lists, empty strings, too many or too long inputs. Returns the characters."""
    if not texts:
        raise EmptyInput(field, "is empty; send at least one")
    if len(texts) > limits.max_inputs:
        raise InvalidArgument(field, f"has {len(texts)} items, over the limit of {limits.max_inputs}; split the request")
    chars = 0
    for i, text in enumerate(texts):
        n = len(text)
        if n > limits.max_chars:
            raise InvalidArgument(
                f"{field}[{i}]", f"has {n} characters, over the limit of {limits.max_chars}; shorten or split it"
            )
        if is_blank(text):
            raise EmptyInput(f"{field}[{i}]", "is empty (only whitespace, control or zero-width characters)")
        chars += n
    return chars


def check_pairs(pairs: Sequence[tuple[str, str]], limits: Limits) -> int:
    """check_texts for text pairs: fields named ``pairs[i].first`` / ``pairs[i].second``. Returns the characters."""
    if not pairs:
        raise EmptyInput("pairs", "is empty; send at least one")
    if len(pairs) > limits.max_inputs:
        raise InvalidArgument("pairs", f"has {len(pairs)} items, over the limit of {limits.max_inputs}; split the request")
    chars = 0
    for i, pair in enumerate(pairs):
        for side, text in zip(("first", "second"), pair):
            if len(text) > limits.max_chars:
                raise InvalidArgument(f"pairs[{i}].{side}", f"has {len(text)} characters, over the limit of {limits.max_chars}; shorten or split it")
            if is_blank(text):
                raise EmptyInput(f"pairs[{i}].{side}", "is empty (only whitespace, control or zero-width characters)")
            chars += len(text)
    return chars


def check_texts_or_pairs(texts: Sequence[str], pairs: Sequence[tuple[str, str]], limits: Limits) -> int:
    """A request that takes single texts or pairs: exactly one of them. Returns the characters."""
    if texts and pairs:
        raise InvalidArgument("pairs", "send texts or pairs, not both")
    return check_pairs(pairs, limits) if pairs else check_texts(texts, "texts", limits)


class ServedModel:
    """A loaded model version: tokenizer + runtime + its batcher."""

    def __init__(
        self,
        manifest: Manifest,
        runtime: Runtime,
        tokenizer: TextTokenizer,
        *,
        limits: Limits,
        admission: Admission,
        tokenize_pool: concurrent.futures.Executor,
    ) -> None:
        self.manifest = manifest
        self.name = manifest.name
        self.runtime = runtime
        self.tokenizer = tokenizer
        self.limits = limits
        self._admission = admission
        self._tokenize_pool = tokenize_pool
        self.batcher = Batcher(manifest.name, self._batch_fn(), limits.batch, kind=manifest.kind.value,
                               on_idle=runtime.trim)

    def _batch_fn(self) -> BatchFn:
        raise NotImplementedError

    async def _tokenize(
        self, inputs: Sequence[Any], *, truncate: Truncate, field: str, chars: int, tokenize: TokenizeFn | None = None
    ) -> tuple[list[TokenSeq], list[bool]]:
        def encode() -> tuple[list[TokenSeq], list[bool]]:
            if tokenize is not None:  # e.g. a chunking.Chunker (long_input CHUNK)
                return tokenize(inputs)
            return self.tokenizer.encode(inputs, truncate=truncate, field=field)

        metrics.TOKENIZED.labels(self.name, self.manifest.kind.value).inc(len(inputs))
        if chars <= INLINE_TOKENIZE_CHARS:
            return encode()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._tokenize_pool, encode)

    async def _infer(self, seqs: list[TokenSeq], deadline: float | None) -> tuple[list[Any], int, int]:
        """Run every sequence through the batcher. Returns (results, queue_ns, inference_ns).

        When the call ends early (cancelled, or one input failed) its other inputs leave the
        queue at once; when its deadline passes they fail with DeadlineExceeded at that moment."""
        loop = asyncio.get_running_loop()
        caller, request = _caller.get(), next(_groups)
        group = request if caller is None else caller
        scope = observe.traced()
        items = [WorkItem(seq, loop.create_future(), group, deadline, request, scope) for seq in seqs]
        self.batcher.submit(items)
        timer = None
        if deadline is not None and any(not it.future.done() for it in items):
            timer = loop.call_later(max(0.0, deadline - time.monotonic()), self.batcher.expire, items)
        try:
            if len(items) == 1:
                results = [await items[0].future]
            else:
                results = list(await asyncio.gather(*(item.future for item in items)))
        except BaseException:
            self.batcher.remove(items)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        queue_ns = max(int((it.started - it.enqueued) * 1e9) for it in items)
        batches = {(it.started, it.batch_ns) for it in items}
        return results, queue_ns, sum(ns for _, ns in batches)

    async def run(
        self,
        inputs: Sequence[Any],
        *,
        truncate: Truncate,
        field: str,
        chars: int,
        deadline: float | None,
        request_id: str,
        tokenize: TokenizeFn | None = None,
        compute: ComputeFn | None = None,
    ) -> tuple[list[Any], list[TokenSeq], list[bool], Usage]:
        """``tokenize`` replaces the tokenizer's own encode; ``compute`` replaces the batcher and the graph
        for work done right here (a lookup, no model run: an inference-free sparse query), refused with
        DeadlineExceeded when the deadline passed before it, as a queued input is. Results are per
        returned sequence."""
        start = time.monotonic_ns()
        # Admission before any work: a refused request is never tokenized.
        admitted = len(inputs)
        self._admission.acquire(admitted)
        try:
            seqs, truncated = await self._tokenize(
                inputs, truncate=truncate, field=field, chars=chars, tokenize=tokenize
            )
            if len(seqs) > admitted:  # chunking made more sequences than inputs
                self._admission.acquire(len(seqs) - admitted)
                admitted = len(seqs)
            tokenized = time.monotonic_ns()
            if compute is None:
                results, queue_ns, inference_ns = await self._infer(seqs, deadline)
            else:
                if deadline is not None and time.monotonic() >= deadline:
                    raise DeadlineExceeded("deadline passed before the model's work ran; nothing was computed")
                results, queue_ns = compute(seqs), 0
                inference_ns = time.monotonic_ns() - tokenized
        finally:
            self._admission.release(admitted)
        ran = time.monotonic_ns()
        tokens = sum(s.length for s in seqs)
        observe.request_done(
            model=self.name, version=self.manifest.version, kind=self.manifest.kind.value, start=start,
            tokenized=tokenized, queue_ns=queue_ns, ran=ran, inputs=len(inputs), sequences=len(seqs), tokens=tokens,
            chunked=isinstance(tokenize, Chunker),
        )
        usage = Usage(
            request_id=request_id,
            model=self.name,
            version=self.manifest.version,
            chars=chars,
            tokens=tokens,
            timing=Timing(
                tokenize_ns=tokenized - start,
                queue_ns=queue_ns,
                inference_ns=inference_ns,
                total_ns=ran - start,
            ),
        )
        return results, seqs, truncated, usage

    def prompt_for(self, input_type: InputType, prompt_name: str) -> str:
        """The prompt Encode puts before a text; models without prompts have none."""
        if prompt_name:
            raise InvalidArgument("prompt_name", f"{prompt_name!r} is not a prompt of {self.name} (it has none)")
        return ""

    def tokenizer_for(self, input_type: InputType) -> TextTokenizer:
        """The tokenizer Encode runs on texts of this input type; one for all but a kind that routes
        them apart (an inference-free sparse model's query route)."""
        return self.tokenizer

    def appended_for(self, input_type: InputType, length: int) -> list[int]:
        """Token ids Encode puts after the tokenizer's ``length`` tokens for texts of this input type: a
        multi-vector query's expansion (mask tokens up to its length); none for other kinds."""
        return []

    async def tokenize(self, params: TokenizeParams, *, request_id: str) -> TokenizeResult:
        """The tokens this model reads for each text (with Encode's prompt, tokenizer and appended tokens) or
        pair; no model runs."""
        start = time.monotonic_ns()
        chars = check_texts_or_pairs(params.texts, params.pairs, self.limits)
        if params.pairs and params.prompt_name:
            raise InvalidArgument("prompt_name", "pairs are read without a prompt; leave it unset")
        prompt = "" if params.pairs else self.prompt_for(params.input_type, params.prompt_name)
        tokenizer = self.tokenizer if params.pairs else self.tokenizer_for(params.input_type)
        inputs: list[Any] = list(params.pairs) or [prompt + t for t in params.texts]

        def appended(length: int) -> list[tuple[int, str]]:
            if params.pairs:
                return []
            return [(i, tokenizer.id_to_token(i)) for i in self.appended_for(params.input_type, length)]

        def run() -> list[Any]:
            encs = tokenizer.encodings(inputs, truncate=params.truncate)
            return [tokens_of(e, prompt=prompt, truncate=params.truncate, max_tokens=tokenizer.max_tokens,
                              appended=appended(len(e.ids)))
                    for e in encs]

        if chars <= INLINE_TOKENIZE_CHARS:
            tokenized = run()
        else:
            tokenized = await asyncio.get_running_loop().run_in_executor(self._tokenize_pool, run)
        done = time.monotonic_ns()
        usage = Usage(
            request_id=request_id, model=self.name, version=self.manifest.version, chars=chars,
            tokens=sum(t.token_count for t in tokenized),
            timing=Timing(tokenize_ns=done - start, total_ns=done - start),
        )
        return TokenizeResult(tokenized, tokenizer.max_tokens, usage)

    async def decode(self, ids: Sequence[int], *, skip_special_tokens: bool, request_id: str) -> DecodeResult:
        """Token ids back to text, as the model's tokenizer decodes them."""
        start = time.monotonic_ns()
        check_ids(ids, vocab_size=self.tokenizer.vocab_size, max_ids=self.limits.max_chars)
        text = self.tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)
        done = time.monotonic_ns()
        usage = Usage(
            request_id=request_id, model=self.name, version=self.manifest.version, chars=len(text), tokens=len(ids),
            timing=Timing(tokenize_ns=done - start, total_ns=done - start),
        )
        return DecodeResult(text, usage)

    async def warm_up(self) -> None:
        """Every padded shape the runtime will see (CUDA buckets), then a long input and a short one
        through the batcher: the first runs of a session (and of each shape) are slow."""
        warm = getattr(self.runtime, "warm", None)
        if warm is not None:
            await asyncio.get_running_loop().run_in_executor(None, warm, self.limits.batch.max_batch_size)
        for sample in kind_of(self.manifest.kind).warm_up_inputs(self.tokenizer.max_tokens):
            seqs, _ = self.tokenizer.encode([sample], truncate=Truncate.END, field="warm-up")
            await self._infer(seqs, None)
