"""Multi-vector embeddings (sentence-transformers' MultiVectorEncoder, ColBERT / PyLate): one
vector per scored token, compared by MaxSim.

The graph holds Transformer -> Dense -> token-level Normalize and outputs ``token_embeddings``
(batch x tokens x dim). What sentence-transformers does around it is here, for the server and the
exporter's parity alike: the per-input-type length (query_length / document_length), ColBERT's
query expansion (pad the query with the mask token up to a fixed length; those positions are
scored, and unless ``attend`` the encoder does not attend to them), and MultiVectorMask's skiplist
(tokens dropped from a document's vectors). A self-check input is ``[task, text]``; its reference
row is [dim, the text's vectors row by row].
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
from embedrank.model.kinds.embedding import QuantizationRanges, parse_ranges
from embedrank.model.numeric import cosines
from embedrank.model.runtime.base import TokenSeq
from embedrank.model.tokenize import TextTokenizer, Truncate


class Task(enum.Enum):
    """What sentence-transformers' ``task`` is for a call: encode_query, encode_document, encode."""

    QUERY = "query"
    DOCUMENT = "document"
    NONE = "none"  # encode(): no per-task length; the skiplist as for documents


@dataclasses.dataclass(frozen=True)
class Expansion:
    """Transformer.query_expansion: queries padded with ``token_id`` up to ``length`` tokens."""

    strategy: str  # fixed (exactly length tokens) | min (at least length tokens)
    attend: bool  # the encoder attends to the expansion tokens
    token_id: int
    length: int


@dataclasses.dataclass(frozen=True)
class MultiVectorSpec:
    dimensions: int
    query_length: int | None
    document_length: int | None
    expansion: Expansion | None
    skiplist_ids: tuple[int, ...]
    skiplist_tasks: tuple[str, ...]
    prompts: dict[str, str]
    default_prompt_name: str | None
    similarity_fn: str  # maxsim | meanmaxsim
    normalize: bool = True  # the graph ends in a token-level Normalize
    ranges: QuantizationRanges | None = None  # per dimension, over token vectors: int8/uint8 output


def task_tokenizer(spec: MultiVectorSpec, tokenizer: TextTokenizer, task: Task) -> TextTokenizer:
    """The tokenizer at the length Transformer.preprocess cuts this task's texts to: a query's
    expansion length (fixed) or at least it (min), else query_length / document_length, else the model's."""
    length = {Task.QUERY: spec.query_length, Task.DOCUMENT: spec.document_length}.get(task)
    expansion = spec.expansion if task is Task.QUERY else None
    if expansion is not None:
        cap = expansion.length if expansion.strategy == "fixed" else max(length or tokenizer.max_tokens, expansion.length)
    else:
        cap = length or tokenizer.max_tokens
    return tokenizer.limited(cap)


def expansion_ids(spec: MultiVectorSpec, length: int, task: Task) -> list[int]:
    """The expansion tokens appended after a query of ``length`` tokens (up to the expansion length:
    preprocess's pad positions swapped for the mask token); none for other tasks or without expansion."""
    expansion = spec.expansion if task is Task.QUERY else None
    if expansion is None or length >= expansion.length:
        return []
    return [expansion.token_id] * (expansion.length - length)


def encode(
    spec: MultiVectorSpec, tokenizer: TextTokenizer, texts: Sequence[str], task: Task, *, truncate: Truncate, field: str
) -> tuple[list[TokenSeq], list[bool]]:
    """Texts (prompt already prepended) -> token sequences as the model's Transformer.preprocess makes them."""
    seqs, truncated = task_tokenizer(spec, tokenizer, task).encode(texts, truncate=truncate, field=field)
    expansion = spec.expansion if task is Task.QUERY else None
    if expansion is None:
        return seqs, truncated
    out = []
    for seq in seqs:
        extra = expansion_ids(spec, seq.length, task)
        if not extra:
            out.append(seq)
            continue
        ids = np.concatenate([seq.ids, np.asarray(extra, dtype=np.int64)])
        types = None if seq.type_ids is None else np.concatenate([seq.type_ids, np.zeros(len(extra), dtype=np.int64)])
        out.append(TokenSeq(ids, types, None if expansion.attend else seq.length))
    return out, truncated


def kept(spec: MultiVectorSpec, seq: TokenSeq, task: Task) -> np.ndarray:
    """Which of the sequence's positions have a vector (MultiVectorMask): every real and expansion
    token, less the skiplist's on the tasks it applies to (documents; encode() counts as one)."""
    name = "document" if task is Task.NONE else task.value
    if spec.skiplist_ids and name in spec.skiplist_tasks:
        keep: np.ndarray = ~np.isin(seq.ids, np.asarray(spec.skiplist_ids, dtype=np.int64))
        return keep
    return np.ones(seq.length, dtype=bool)


def maxsim(query: np.ndarray, document: np.ndarray, *, mean: bool) -> float:
    """sum over query vectors of the best dot product with a document vector (/ query vectors: meanmaxsim)."""
    if query.shape[0] == 0 or document.shape[0] == 0:
        return 0.0
    score = float((query @ document.T).max(axis=1).sum())
    return score / query.shape[0] if mean else score


class MultiVectorKind(Kind):
    kind = ModelKind.MULTI_VECTOR
    output = "token_embeddings"
    rpc = "MultiVectorEmbed.EncodeMultiVector"
    gates = frozenset({"min_token_cosine", "min_mean_token_cosine", "max_count_mismatch"})
    ragged = True

    def parse(self, r: Reader, *, outputs: Sequence[str], where: str) -> MultiVectorSpec:
        m = r.sub(self.section)
        expansion = None
        if m.data.get("expansion") is not None:
            e = m.sub("expansion")
            expansion = Expansion(
                strategy=e.get("strategy", str), attend=e.get("attend", bool), token_id=e.get("token_id", int),
                length=e.get("length", int),
            )
            if expansion.strategy not in ("fixed", "min") or expansion.length < 1:
                raise ManifestError(f"{where}: multi-vector.expansion needs strategy fixed|min and a positive length")
        dimensions = m.get("dimensions", int)
        spec = MultiVectorSpec(
            dimensions=dimensions,
            query_length=m.get("query_length", int, None),
            document_length=m.get("document_length", int, None),
            expansion=expansion,
            skiplist_ids=tuple(int(i) for i in m.get("skiplist_ids", list, [])),
            skiplist_tasks=tuple(str(t) for t in m.get("skiplist_tasks", list, ["document"])),
            prompts=dict(m.get("prompts", dict, {})),
            default_prompt_name=m.get("default_prompt_name", str, None),
            similarity_fn=m.get("similarity_fn", str, "maxsim"),
            normalize=m.get("normalize", bool, True),
            ranges=parse_ranges(m, dimensions=dimensions, where=where),
        )
        if spec.similarity_fn not in ("maxsim", "meanmaxsim"):
            raise ManifestError(f"{where}: multi-vector.similarity_fn must be maxsim or meanmaxsim")
        if self.output not in outputs:
            raise ManifestError(f"{where}: a multi-vector graph must output {self.output}")
        return spec

    def check_inputs(self, inputs: Sequence[Any], *, queries: int, where: str) -> None:
        tasks = {t.value for t in Task}
        if not all(
            isinstance(p, (list, tuple)) and len(p) == 2 and p[0] in tasks and isinstance(p[1], str) for p in inputs
        ):
            raise ManifestError(f"{where}: self_check.inputs of a multi-vector model must be [task, text] pairs")

    def self_check_seqs(self, spec: Any, inputs: Sequence[Any], tokenizer: TextTokenizer) -> list[TokenSeq]:
        out: list[TokenSeq] = []
        for task, text in inputs:
            seqs, _ = encode(spec, tokenizer, [text], Task(task), truncate=Truncate.END, field="self_check.inputs")
            out.extend(seqs)
        return out

    def self_check_row(self, spec: Any, output: np.ndarray, item: Any, seq: TokenSeq) -> np.ndarray:
        rows: np.ndarray = output[0, : seq.length][kept(spec, seq, Task(item[0]))]
        return np.concatenate([[rows.shape[1]], rows.reshape(-1)])  # [dim, the vectors row by row]

    def measure(self, reference: Any, got: Any, *, queries: int) -> dict[str, float]:
        worst, total, tokens, mismatched = 1.0, 0.0, 0, 0
        for ref, row in zip(reference, got):
            if ref.shape != row.shape or ref[0] != row[0]:
                mismatched += 1
                continue
            dim = int(ref[0])
            if ref.size > 1:
                cos = cosines(ref[1:].reshape(-1, dim), row[1:].reshape(-1, dim))
                worst, total, tokens = min(worst, float(cos.min())), total + float(cos.sum()), tokens + cos.size
        return {"min_token_cosine": worst, "mean_token_cosine": total / max(tokens, 1),
                "count_mismatch": float(mismatched)}

    def warm_up_inputs(self, max_tokens: int) -> tuple[str, str]:
        return "warm up " * (max_tokens // 2), "warm up"


MULTI_VECTOR = MultiVectorKind()
