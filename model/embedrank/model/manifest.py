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
from typing import Any, TypeVar

from embedrank.model.errors import ManifestError
from embedrank.model.jsonread import Reader
from embedrank.model.kinds import ModelKind, kind_of

FORMAT = 1
S = TypeVar("S")
MANIFEST_FILE = "manifest.json"
# A graph past protobuf's 2 GiB keeps its weights in ONNX external data, one file beside it named so
# (onnxruntime.transformers' OnnxModel.save does the same); the manifest names it and its size.
EXTERNAL_DATA_SUFFIX = ".data"


class RuntimeKind(enum.Enum):
    """The runtime a model version was exported and verified for; the server serves it with that one."""

    ONNXRUNTIME = "onnxruntime"
    OPENVINO = "openvino"


@dataclasses.dataclass(frozen=True)
class Graph:
    file: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    precision: str  # fp32 | fp16 | int8 (onnxruntime); fp32 | bf16 | int8 (openvino)
    optimize: str = "none"
    quantize: str = "none"
    runtime: RuntimeKind = RuntimeKind.ONNXRUNTIME  # manifests before runtimes existed: onnxruntime
    external_data: ExternalData | None = None  # the weights' file beside an ONNX graph past 2 GiB


@dataclasses.dataclass(frozen=True)
class ExternalData:
    """An ONNX graph's external data file (its weights) and its size, checked at every load."""

    file: str
    bytes: int


@dataclasses.dataclass(frozen=True)
class SelfCheck:
    """A few inputs with sentence-transformers' outputs, re-run at load under the export's gate.

    ``inputs`` are texts (embeddings) or [query, document] pairs (rerankers, grouped by query,
    ``queries`` groups of equal size); ``reference`` holds sentence_embedding rows or logits.
    ``gate`` keys: min_cosine, min_mean_cosine (embeddings); max_abs_diff, min_top1_agreement
    (rerankers); the kind's ``gates`` say which. A sparse model with an inference-free query route
    has its ``queries`` query texts first (run through that route), then documents.
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
class Manifest:
    name: str
    version: int
    kind: ModelKind
    graph: Graph
    tokenizer: TokenizerSpec
    spec: Any  # the kind's section (embedding.EmbeddingSpec, rerank.RerankSpec, ...): spec_as() types it
    raw: dict[str, Any]  # the whole JSON, for GetModel and the parity report
    self_check: SelfCheck | None = None  # None: exported before self checks existed

    def spec_as(self, typ: type[S]) -> S:
        """The kind's section as ``typ``; a TypeError (a bug) when the model is of another kind."""
        if not isinstance(self.spec, typ):
            raise TypeError(f"model {self.name} is a {self.kind.value} model, its section is not {typ.__name__}")
        return self.spec

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
        data = manifest.graph.external_data
        if data is not None:
            graph_files.append(data.file)
        for needed in (*graph_files, manifest.tokenizer.file, *kind_of(manifest.kind).files(manifest.spec)):
            if not (directory / needed).is_file():
                raise ManifestError(f"{directory / needed}: missing (named in {path}); re-export the model")
            if not os.access(directory / needed, os.R_OK):
                raise ManifestError(unreadable(directory / needed, directory.parent.parent))
        if data is not None and (size := (directory / data.file).stat().st_size) != data.bytes:
            # A copy cut short (a full disk, an interrupted rsync): refused here, before the runtime reads it.
            raise ManifestError(f"{directory / data.file}: {size} bytes, {path} says {data.bytes} (the graph's "
                                "weights, a truncated or altered copy?); copy the version again or re-export it")
        return manifest

    @classmethod
    def from_json(cls, data: Any, *, where: str = "manifest") -> Manifest:
        r = Reader(data, where)
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
            external_data=_external_data(g, where) if g.data.get("external_data") is not None else None,
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
        spec = kind_of(kind).parse(r, outputs=graph.outputs, where=where)
        self_check = _self_check(r, kind, where) if r.data.get("self_check") is not None else None
        return cls(
            name=r.get("name", str),
            version=r.get("version", int),
            kind=kind,
            graph=graph,
            tokenizer=tokenizer,
            spec=spec,
            raw=data,
            self_check=self_check,
        )


def _external_data(g: Reader, where: str) -> ExternalData:
    e = g.sub("external_data")
    data = ExternalData(file=e.get("file", str), bytes=e.get("bytes", int))
    graph = g.get("file", str)
    if data.file != graph + EXTERNAL_DATA_SUFFIX or data.bytes < 0:
        raise ManifestError(f"{where}: graph.external_data must be {{file: {graph + EXTERNAL_DATA_SUFFIX!r}, "
                            "bytes: its size}; re-export the model")
    return data


def _self_check(r: Reader, kind: ModelKind, where: str) -> SelfCheck:
    c = r.sub("self_check")
    inputs = c.get("inputs", list)
    reference = c.get("reference", list)
    gate = c.get("gate", dict)
    queries = c.get("queries", int, 0)
    spec = kind_of(kind)
    bad_gate = set(gate) - spec.gates
    if not gate or bad_gate or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in gate.values()):
        raise ManifestError(f"{where}: self_check.gate must map {' or '.join(sorted(spec.gates))} to numbers")
    if not inputs or len(inputs) != len(reference):
        raise ManifestError(f"{where}: self_check needs as many reference rows as inputs (and at least one)")
    spec.check_inputs(inputs, queries=queries, where=where)
    rows: list[tuple[float, ...]] = []
    for row in reference:
        if not isinstance(row, list) or not row or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in row
        ):
            raise ManifestError(f"{where}: self_check.reference rows must be lists of numbers")
        rows.append(tuple(float(v) for v in row))
    if not spec.ragged and len({len(row) for row in rows}) != 1:
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
