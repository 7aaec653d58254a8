"""ONNX graphs past protobuf's 2 GiB: the weights as ONNX external data, one file beside the graph.

A protobuf message cannot reach 2 GiB, so a checkpoint past ~500 M fp32 parameters (BGE-M3 2.27 GB,
Qwen3-Reranker-0.6B, gte-Qwen2-1.5B...) cannot be one ``model.onnx``: its weights go to
``model.onnx.data`` beside it (``onnx.save_model(save_as_external_data=True, all_tensors_to_one_file=True)``;
optimum's exporter and onnxruntime.transformers do the same past 2 GiB; the Hub's optimum exports
name the file ``model.onnx_data``).

Each step of an export writes its graph in a folder of its own (``exported/model.onnx``,
``optimized/model.onnx``, ...), so the graph and its data file keep the names the graph records
and move together. A step keeps external data when its input has it; ``publish_graph`` then
writes the published graph as ``--external-data`` asks:

- auto (default): external data only when the graph is past the limit (2 GiB less 16 MiB of
  headroom). int8 of a 2.3 GB model is ~1.3 GB (the word embeddings stay fp32) and is one file again.
- always: external data whatever the size (tests run the same path on tiny models).
- never: one file; a graph past the limit is refused, naming the flag.
"""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import Any

from embedrank.model.errors import ConfigError
from embedrank.model.manifest import EXTERNAL_DATA_SUFFIX

GRAPH = "model.onnx"
DATA = GRAPH + EXTERNAL_DATA_SUFFIX
PROTOBUF_LIMIT = 2**31 - 1  # onnx.checker.MAXIMUM_PROTOBUF: the largest message protobuf serializes
LIMIT = PROTOBUF_LIMIT - 2**24  # auto's threshold: headroom for appended modules and re-serialization
FLAG = "--external-data"


class ExternalData(enum.Enum):
    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


def external_files(path: Path) -> list[Path]:
    """The external data files ``path``'s initializers name (none for a one-file graph)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    names = {entry.value for init in model.graph.initializer if init.data_location == onnx.TensorProto.EXTERNAL
             for entry in init.external_data if entry.key == "location"}
    return [path.parent / name for name in sorted(names)]


def graph_bytes(path: Path) -> int:
    """The graph's size on disk with its external data files."""
    return path.stat().st_size + sum(p.stat().st_size for p in external_files(path) if p.exists())


def check_data_present(path: Path) -> None:
    """A ConfigError when an external data file ``path`` names is missing (e.g. only model.onnx downloaded)."""
    for data in external_files(path):
        if not data.is_file():
            raise ConfigError(f"{path}: its weights are external data in {data.name}, which is missing beside it; "
                              "copy (or download) that file too")


def size_text(nbytes: int) -> str:
    return f"{nbytes / 1e9:.2f} GB" if nbytes >= 10**9 else f"{nbytes / 1e6:.1f} MB"


def refuse_never(nbytes: int, what: str) -> None:
    """--external-data never with a graph past the limit: one line that names the flag."""
    raise ConfigError(f"{what} is {size_text(nbytes)}, past protobuf's 2 GiB limit for one model.onnx; "
                      f"{FLAG} never cannot write it: use {FLAG} auto (the default: the weights go to {DATA} "
                      "beside model.onnx)")


def wants_external(nbytes: int, mode: ExternalData) -> bool:
    return mode is ExternalData.ALWAYS or nbytes >= LIMIT


def save(model: Any, path: Path, *, external: bool) -> None:
    """Write ``model`` (an onnx ModelProto) as ``path``, its weights in ``path``.data when ``external``."""
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    data = path.with_name(path.name + EXTERNAL_DATA_SUFFIX)
    data.unlink(missing_ok=True)  # onnx appends to an existing data file
    if external:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data.name, size_threshold=1024)
    else:
        onnx.save_model(model, str(path))


def check(path: Path) -> None:
    """onnx's checker, from the path: an in-memory check serializes the model, impossible past 2 GiB."""
    import onnx

    onnx.checker.check_model(str(path))


def publish_graph(src: Path, folder: Path, mode: ExternalData) -> dict[str, Any] | None:
    """Put graph ``src`` (and its data) into ``folder`` as model.onnx as ``mode`` asks; returns the
    manifest's ``graph.external_data`` ({file, bytes}) or None for a one-file graph."""
    have = external_files(src)
    nbytes = graph_bytes(src)
    external = wants_external(nbytes, mode)
    if mode is ExternalData.NEVER and external:
        refuse_never(nbytes, "the graph")
    dst = folder / GRAPH
    if external:
        as_asked = src.name == GRAPH and have == [src.with_name(DATA)]
    else:
        as_asked = not have
    if as_asked:  # move (the data file keeps the name the graph records)
        os.replace(src, dst)
        if external:
            os.replace(have[0], folder / DATA)
    else:
        import onnx

        save(onnx.load(str(src)), dst, external=external)
    return {"file": DATA, "bytes": (folder / DATA).stat().st_size} if external else None


def remove(path: Path) -> None:
    """Remove a step's graph and its data files, once the next step has written its own."""
    for file in (*external_files(path), path):
        file.unlink(missing_ok=True)
