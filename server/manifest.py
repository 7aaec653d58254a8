"""The model manifest: what a model version is, written by the exporter, read by the server.

The JSON is the contract between the two; ``Manifest.from_json`` refuses anything that
cannot be served and says what to fix.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
from pathlib import Path
from typing import Any

from embedrank.server.errors import ManifestError

FORMAT = 1
MANIFEST_FILE = "manifest.json"


class ModelKind(enum.Enum):
    EMBEDDING = "embedding"
    RERANK = "rerank"


class RuntimeKind(enum.Enum):
    """The runtime a model version was exported and verified for; the server serves it with that one."""

    ONNXRUNTIME = "onnxruntime"
    OPENVINO = "openvino"


class Activation(enum.Enum):
    IDENTITY = "identity"
    SIGMOID = "sigmoid"
    SOFTMAX = "softmax"
    TANH = "tanh"


@dataclasses.dataclass(frozen=True)
class Graph:
    file: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    precision: str  # fp32 | fp16 | int8 (onnxruntime); fp32 | bf16 | int8 (openvino)
    optimize: str = "none"
    quantize: str = "none"
    runtime: RuntimeKind = RuntimeKind.ONNXRUNTIME  # manifests before runtimes existed: onnxruntime


@dataclasses.dataclass(frozen=True)
class SelfCheck:
    """A few inputs with sentence-transformers' outputs, re-run at load under the export's gate.

    ``inputs`` are texts (embeddings) or [query, document] pairs (rerankers, grouped by query,
    ``queries`` groups of equal size); ``reference`` holds sentence_embedding rows or logits.
    ``gate`` keys: min_cosine, min_mean_cosine (embeddings); max_abs_diff, min_top1_agreement
    (rerankers).
    """

    inputs: tuple[Any, ...]
    reference: tuple[tuple[float, ...], ...]
    gate: dict[str, float]
    queries: int = 0


@dataclasses.dataclass(frozen=True)
class TokenizerSpec:
    file: str
    max_tokens: int
    pad_token_id: int


@dataclasses.dataclass(frozen=True)
class QuantizationRanges:
    """Per-dimension [min, max] of the float embeddings, calibrated at export."""

    minimum: tuple[float, ...]
    maximum: tuple[float, ...]


@dataclasses.dataclass(frozen=True)
class EmbeddingSpec:
    dimensions: int
    pooling: tuple[str, ...]
    normalize: bool
    prompts: dict[str, str]
    default_prompt_name: str | None
    similarity_fn: str
    ranges: QuantizationRanges | None = None


@dataclasses.dataclass(frozen=True)
class RerankSpec:
    num_labels: int
    activation: Activation


@dataclasses.dataclass(frozen=True)
class Manifest:
    name: str
    version: int
    kind: ModelKind
    graph: Graph
    tokenizer: TokenizerSpec
    embedding: EmbeddingSpec | None
    rerank: RerankSpec | None
    raw: dict[str, Any]  # the whole JSON, for GetModel and the parity report
    self_check: SelfCheck | None = None  # None: exported before self checks existed

    @classmethod
    def load(cls, directory: Path) -> Manifest:
        path = directory / MANIFEST_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ManifestError(f"{path}: missing; export the model with `embedrank export`") from None
        except PermissionError:
            raise ManifestError(unreadable(path, directory.parent.parent)) from None
        except (OSError, ValueError) as exc:
            raise ManifestError(f"{path}: not readable JSON ({exc}); re-export the model") from None
        manifest = cls.from_json(data, where=str(path))
        graph_files = [manifest.graph.file]
        if manifest.graph.file.endswith(".xml"):  # OpenVINO IR: the weights sit beside it
            graph_files.append(manifest.graph.file[: -len(".xml")] + ".bin")
        for needed in (*graph_files, manifest.tokenizer.file):
            if not (directory / needed).is_file():
                raise ManifestError(f"{directory / needed}: missing (named in {path}); re-export the model")
            if not os.access(directory / needed, os.R_OK):
                raise ManifestError(unreadable(directory / needed, directory.parent.parent))
        return manifest

    @classmethod
    def from_json(cls, data: Any, *, where: str = "manifest") -> Manifest:
        r = _Reader(data, where)
        fmt = r.get("format", int)
        if fmt != FORMAT:
            raise ManifestError(f"{where}: format {fmt} is not {FORMAT}; re-export with this embedrank")
        kind = r.enum("kind", ModelKind)
        g = r.sub("graph")
        graph = Graph(
            file=g.get("file", str),
            inputs=tuple(g.get("inputs", list)),
            outputs=tuple(g.get("outputs", list)),
            precision=g.get("precision", str),
            optimize=g.get("optimize", str, "none"),
            quantize=g.get("quantize", str, "none"),
            runtime=g.enum("runtime", RuntimeKind, RuntimeKind.ONNXRUNTIME),
        )
        allowed = {RuntimeKind.ONNXRUNTIME: ("fp32", "fp16", "int8"), RuntimeKind.OPENVINO: ("fp32", "bf16", "int8")}
        if graph.precision not in allowed[graph.runtime]:
            raise ManifestError(
                f"{where}: graph.precision {graph.precision!r} is not one {graph.runtime.value} serves "
                f"({', '.join(allowed[graph.runtime])}); re-export the model"
            )
        if "input_ids" not in graph.inputs or "attention_mask" not in graph.inputs:
            raise ManifestError(f"{where}: graph.inputs must include input_ids and attention_mask")
        t = r.sub("tokenizer")
        tokenizer = TokenizerSpec(
            file=t.get("file", str), max_tokens=t.get("max_tokens", int), pad_token_id=t.get("pad_token_id", int)
        )
        if tokenizer.max_tokens < 2:
            raise ManifestError(f"{where}: tokenizer.max_tokens must be >= 2")
        embedding = rerank = None
        if kind is ModelKind.EMBEDDING:
            e = r.sub("embedding")
            ranges = None
            if e.data.get("ranges") is not None:
                q = e.sub("ranges")
                ranges = QuantizationRanges(tuple(q.get("min", list)), tuple(q.get("max", list)))
            embedding = EmbeddingSpec(
                dimensions=e.get("dimensions", int),
                pooling=tuple(e.get("pooling", list)),
                normalize=e.get("normalize", bool),
                prompts=dict(e.get("prompts", dict, {})),
                default_prompt_name=e.get("default_prompt_name", str, None),
                similarity_fn=e.get("similarity_fn", str, "cosine"),
                ranges=ranges,
            )
            if ranges and not (len(ranges.minimum) == len(ranges.maximum) == embedding.dimensions):
                raise ManifestError(f"{where}: embedding.ranges must have {embedding.dimensions} values each")
            if "sentence_embedding" not in graph.outputs:
                raise ManifestError(f"{where}: an embedding graph must output sentence_embedding")
        else:
            k = r.sub("rerank")
            rerank = RerankSpec(num_labels=k.get("num_labels", int), activation=k.enum("activation", Activation))
            if "logits" not in graph.outputs:
                raise ManifestError(f"{where}: a rerank graph must output logits")
        self_check = _self_check(r, kind, where) if r.data.get("self_check") is not None else None
        return cls(
            name=r.get("name", str),
            version=r.get("version", int),
            kind=kind,
            graph=graph,
            tokenizer=tokenizer,
            embedding=embedding,
            rerank=rerank,
            raw=data,
            self_check=self_check,
        )


_GATES = {
    ModelKind.EMBEDDING: {"min_cosine", "min_mean_cosine"},
    ModelKind.RERANK: {"max_abs_diff", "min_top1_agreement"},
}


def _self_check(r: _Reader, kind: ModelKind, where: str) -> SelfCheck:
    c = r.sub("self_check")
    inputs = c.get("inputs", list)
    reference = c.get("reference", list)
    gate = c.get("gate", dict)
    queries = c.get("queries", int, 0)
    bad_gate = set(gate) - _GATES[kind]
    if not gate or bad_gate or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in gate.values()):
        raise ManifestError(f"{where}: self_check.gate must map {' or '.join(sorted(_GATES[kind]))} to numbers")
    if not inputs or len(inputs) != len(reference):
        raise ManifestError(f"{where}: self_check needs as many reference rows as inputs (and at least one)")
    if kind is ModelKind.EMBEDDING:
        if not all(isinstance(t, str) and t for t in inputs):
            raise ManifestError(f"{where}: self_check.inputs of an embedding model must be texts")
    else:
        if not all(isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in inputs):
            raise ManifestError(f"{where}: self_check.inputs of a reranker must be [query, document] pairs")
        if queries < 1 or len(inputs) % queries:
            raise ManifestError(f"{where}: self_check.queries must divide the {len(inputs)} pairs into equal groups")
    rows: list[tuple[float, ...]] = []
    for row in reference:
        if not isinstance(row, list) or not row or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in row
        ):
            raise ManifestError(f"{where}: self_check.reference rows must be lists of numbers")
        rows.append(tuple(float(v) for v in row))
    if len({len(row) for row in rows}) != 1:
        raise ManifestError(f"{where}: self_check.reference rows must all have the same length")
    return SelfCheck(
        inputs=tuple(tuple(p) if isinstance(p, list) else p for p in inputs),
        reference=tuple(rows),
        gate={k: float(v) for k, v in gate.items()},
        queries=queries,
    )


def unreadable(path: Path, repository: Path) -> str:
    """The message for a file or folder of the model repository this process may not read."""
    who = f"uid {os.getuid()}" if hasattr(os, "getuid") else "this user"
    return (
        f"{path}: permission denied for the server's user ({who}); re-exporting does not help, fix the "
        f"permissions: chmod -R a+rX {repository} (or run the server as the files' owner)"
    )


class _Reader:
    """Typed access to a JSON object; every failure names the key path."""

    _MISSING = object()

    def __init__(self, data: Any, where: str, prefix: str = "") -> None:
        if not isinstance(data, dict):
            raise ManifestError(f"{where}: {prefix or 'manifest'} must be an object")
        self.data: dict[str, Any] = data
        self.where = where
        self.prefix = prefix

    def get(self, key: str, typ: type, default: Any = _MISSING) -> Any:
        name = self.prefix + key
        if key not in self.data or self.data[key] is None:
            if default is self._MISSING:
                raise ManifestError(f"{self.where}: {name} is missing; re-export the model")
            return default
        value = self.data[key]
        if typ is int and isinstance(value, bool) or not isinstance(value, typ):
            raise ManifestError(f"{self.where}: {name} must be {typ.__name__}, got {value!r}")
        return value

    def sub(self, key: str) -> _Reader:
        return _Reader(self.get(key, dict), self.where, f"{self.prefix}{key}.")

    def enum(self, key: str, typ: type[enum.Enum], default: Any = _MISSING) -> Any:
        value = self.get(key, str, default)
        if isinstance(value, typ):
            return value
        try:
            return typ(value)
        except ValueError:
            allowed = ", ".join(m.value for m in typ)
            raise ManifestError(f"{self.where}: {self.prefix}{key} is {value!r}, not one of {allowed}") from None
