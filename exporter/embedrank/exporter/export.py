"""Step 2: trace the model, pooling/Dense/Normalize included, into an fp32 ONNX graph."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

from embedrank.exporter import graphfile
from embedrank.exporter.deps import need
from embedrank.exporter.graphfile import ExternalData
from embedrank.exporter.source import Source
from embedrank.exporter.kinds import export_kind
from embedrank.exporter.options import OPSET
from embedrank.exporter.tracing import broadcast_masks, check_same_outputs

# onnxruntime 1.2x-1.3x reads at most IR version 13; onnx 1.23 writes 14 by default.
MAX_IR_VERSION = 10


def export_onnx(source: Source, path: Path, *, opset: int = OPSET,
                external_data: ExternalData = ExternalData.AUTO) -> list[str]:
    """Write the fp32 graph as ``path`` (model.onnx in a folder of its own; its weights in model.onnx.data
    beside it past 2 GiB, or with ``external_data`` always); returns its output names."""
    torch = need("torch")
    onnx = need("onnx")
    kind = export_kind(source.kind, Path(source.path))
    wrapper, outputs = kind.wrapper(source.model)
    # Batch 2 x sequence 16 with padding in one row, so no axis is traced as a constant.
    token = min(100, len(source.tokenizer) - 1)  # any real token id; small vocabularies too
    ids = torch.full((2, 16), token, dtype=torch.long)
    mask = torch.ones((2, 16), dtype=torch.long)
    mask[1, 10:] = 0
    sample: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
    if "token_type_ids" in source.input_names:
        types = torch.zeros((2, 16), dtype=torch.long)
        types[:, 8:] = 1 if kind.pairs else 0
        sample["token_type_ids"] = types
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]
    dynamic: dict[str, dict[int, str]] = {n: {0: "batch", 1: "sequence"} for n in names}
    dynamic.update({o: kind.axes_of(o) for o in outputs})
    args = tuple(sample[n] for n in names)
    check_same_outputs(wrapper, args)  # masks without vmap (TorchScript cannot trace vmap): same outputs
    with torch.inference_mode(), warnings.catch_warnings(), broadcast_masks():
        warnings.simplefilter("ignore")
        # The TorchScript exporter: it keeps the op pattern onnxruntime's transformer
        # fusions know (the dynamo exporter's output fuses less, and bakes shapes unless
        # given dynamic_shapes for every input).
        # Past 2 GiB torch writes each weight to a file of its own beside the graph: traced in a folder
        # of its own, then saved with one data file (or none) below.
        traced = path.parent.with_name(path.parent.name + "-traced") / graphfile.GRAPH
        traced.parent.mkdir(parents=True)
        torch.onnx.export(
            wrapper,
            args,
            str(traced),
            input_names=names,
            output_names=outputs,
            dynamic_axes=dynamic,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    nbytes = graphfile.graph_bytes(traced)
    model = onnx.load(str(traced))
    model.ir_version = min(model.ir_version, MAX_IR_VERSION)
    graphfile.save(model, path, external=graphfile.wants_external(nbytes, external_data))
    del model
    shutil.rmtree(traced.parent)
    return outputs
