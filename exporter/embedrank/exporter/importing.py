"""`embedrank import`: a checkpoint that ships an ONNX graph of its transformer, served without torch.

Steps 1-2 read the checkpoint (checkpoint.py) and append its Pooling, Dense and Normalize to the graph
(stmodules.py); steps 3-6 are the export's own (pipeline.finish): optimize, quantize, verify with the
same gates (against the checkpoint's fp32 graph plus the modules in numpy, where the export compares
with sentence-transformers), publish.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
from pathlib import Path
from typing import Any

from embedrank.exporter import graphfile, package, workspace
from embedrank.exporter import stmodules
from embedrank.exporter.checkpoint import Checkpoint, read
from embedrank.exporter.optimize import OptimizeLevel
from embedrank.exporter.options import ExportOptions
from embedrank.exporter.quantize import QuantizePreset
from embedrank.exporter.pipeline import STEPS, _check_source, _done, _step, _with_data, check_one_file, finish, resolve
from embedrank.model.errors import ConfigError
from embedrank.model.kinds import ModelKind

IMPORT_HINT = "pip install '.[import]' (in a checkout of this repository)"


@dataclasses.dataclass
class _Tokenizer:
    backend_tokenizer: Any  # tokenizers.Tokenizer: what package.write_tokenizer reads
    pad_token_id: int


@dataclasses.dataclass
class ImportSource:
    """What pipeline.finish reads of an exporter Source, from a checkpoint read without torch."""

    path: str
    kind: ModelKind
    reference: stmodules.Reference
    tokenizer: _Tokenizer
    model_type: str
    num_heads: int
    hidden_size: int
    max_tokens: int
    input_names: list[str]
    info: dict[str, Any]


def _source(ckpt: Checkpoint) -> ImportSource:
    from tokenizers import Tokenizer

    reference = stmodules.Reference(ckpt)
    return ImportSource(
        path=str(ckpt.folder), kind=ckpt.kind, reference=reference,
        tokenizer=_Tokenizer(Tokenizer.from_file(str(ckpt.tokenizer_file)), ckpt.pad_token_id),
        model_type=ckpt.model_type, num_heads=ckpt.num_heads, hidden_size=ckpt.hidden_size,
        max_tokens=ckpt.max_tokens,
        input_names=[n for n in ("input_ids", "attention_mask", "token_type_ids") if n in reference.inputs],
        info=ckpt.info,
    )


def _versions() -> dict[str, str]:
    out = {"reference": "the checkpoint's own ONNX graph + numpy Pooling/Dense/Normalize"}
    for dist in ("onnx", "onnxruntime", "numpy"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


_INT8_OPS = {"MatMulInteger", "DynamicQuantizeLinear", "QLinearMatMul", "DynamicQuantizeMatMul", "QAttention",
             "MatMulIntegerToFloat", "QuantizeLinear"}


def _quantized(graph: Path) -> bool:
    import onnx

    return any(n.op_type in _INT8_OPS for n in onnx.load(str(graph), load_external_data=False).graph.node)


def _need_onnx() -> None:
    for module in ("onnx", "safetensors"):
        try:
            __import__(module)
        except ImportError as exc:
            raise ConfigError(f"import needs {module} ({exc}); install it with: {IMPORT_HINT}") from None


@workspace.exit_on_signals()
def run_import(opts: ExportOptions, *, variant: str | None = None) -> Path:
    """As run_export, from the checkpoint's ONNX graph instead of a torch trace."""
    _need_onnx()
    _check_source(opts.source)
    ckpt_path = Path(opts.source)
    t = _step(1, STEPS, f"reading {opts.source} (its ONNX graph: {variant or 'the plain one'})")
    ckpt = read(ckpt_path, kind=opts.kind, variant=variant)
    source = _source(ckpt)
    import onnx

    opset = next((o.version for o in onnx.load(str(ckpt.graph), load_external_data=False).opset_import
                  if o.domain in ("", "ai.onnx")), 0)
    if variant is not None and opts.optimize is None:
        opts = dataclasses.replace(opts, optimize=OptimizeLevel.NONE)  # a variant is served as it was shipped
    opts = resolve(dataclasses.replace(opts, opset=opset))
    if variant is not None and _quantized(ckpt.graph):
        if opts.quantize is not QuantizePreset.NONE:
            raise ConfigError(f"--variant {variant} is already quantized (int8); leave --quantize out")
        # gated as a lossy variant (mean cosine, fidelity on the corpus) against the plain fp32 graph
        opts = dataclasses.replace(opts, precision="int8")
    name, version = package.target(opts.output)
    workspace.sweep_leftovers(opts.output.parent)
    _done(t, f"{ckpt.kind.value} model, {ckpt.model_type}, max {ckpt.max_tokens} tokens, "
             f"{ckpt.graph.relative_to(ckpt.folder)} (opset {opset}){_with_data(ckpt.graph)}")
    check_one_file(opts, graphfile.graph_bytes(ckpt.graph), f"{ckpt.graph}")
    with workspace.workspace(None, workspace.WORK_PREFIX) as tmp:
        parts = [f"Pooling {'+'.join(ckpt.pooling)}"] if ckpt.pooling else []
        parts += [f"Dense {d.weight.shape[1]}->{d.weight.shape[0]}" for d in ckpt.dense]
        parts += ["Normalize"] if ckpt.normalize else []
        modules = ", ".join(parts) or "nothing (the logits are the output)"
        t = _step(2, STEPS, f"appending {modules}")
        exported = tmp / "exported" / graphfile.GRAPH
        outputs = stmodules.append(ckpt, ckpt.graph, exported, external_data=opts.external_data)
        _done(t, f"outputs {', '.join(outputs)}{_with_data(exported)}")
        return finish(opts, source, tmp, exported, outputs, name=name, version=version,
                      reference=_versions(), against="the checkpoint's ONNX graph + numpy modules")
