"""Step 2: trace the model, pooling/Dense/Normalize included, into an fp32 ONNX graph."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from embedrank.exporter.deps import need
from embedrank.exporter.source import Source
from embedrank.exporter.tracing import broadcast_masks, check_same_outputs
from embedrank.server.manifest import ModelKind

OPSET = 17
# onnxruntime 1.2x-1.3x reads at most IR version 13; onnx 1.23 writes 14 by default.
MAX_IR_VERSION = 10


def _embedding_wrapper(source: Source) -> tuple[Any, list[str]]:
    torch = need("torch")
    modules = list(source.model)
    normalizes = type(modules[-1]).__name__ == "Normalize"

    class Embedder(torch.nn.Module):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.stages = torch.nn.ModuleList(modules)

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
            features = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                features["token_type_ids"] = token_type_ids
            pooled = None
            for stage in self.stages:
                if type(stage).__name__ == "Normalize":
                    pooled = features["sentence_embedding"]
                features = stage(features)
            if pooled is None:
                return features["sentence_embedding"]
            return features["sentence_embedding"], pooled

    outputs = ["sentence_embedding", "pooled_embedding"] if normalizes else ["sentence_embedding"]
    return Embedder().eval(), outputs


def _rerank_wrapper(source: Source) -> tuple[Any, list[str]]:
    torch = need("torch")
    hf = source.model[0].auto_model

    class Scorer(torch.nn.Module):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.model = hf

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
            kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                kwargs["token_type_ids"] = token_type_ids
            return self.model(**kwargs).logits

    return Scorer().eval(), ["logits"]


def export_onnx(source: Source, path: Path, *, opset: int = OPSET) -> list[str]:
    """Write the fp32 graph to ``path``; returns its output names."""
    torch = need("torch")
    onnx = need("onnx")
    wrapper, outputs = (_embedding_wrapper if source.kind is ModelKind.EMBEDDING else _rerank_wrapper)(source)
    # Batch 2 x sequence 16 with padding in one row, so no axis is traced as a constant.
    token = min(100, len(source.tokenizer) - 1)  # any real token id; small vocabularies too
    ids = torch.full((2, 16), token, dtype=torch.long)
    mask = torch.ones((2, 16), dtype=torch.long)
    mask[1, 10:] = 0
    sample: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
    if "token_type_ids" in source.input_names:
        types = torch.zeros((2, 16), dtype=torch.long)
        types[:, 8:] = 1 if source.kind is ModelKind.RERANK else 0
        sample["token_type_ids"] = types
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]
    dynamic: dict[str, dict[int, str]] = {n: {0: "batch", 1: "sequence"} for n in names}
    dynamic.update({o: {0: "batch"} for o in outputs})
    args = tuple(sample[n] for n in names)
    check_same_outputs(wrapper, args)  # masks without vmap (TorchScript cannot trace vmap): same outputs
    with torch.inference_mode(), warnings.catch_warnings(), broadcast_masks():
        warnings.simplefilter("ignore")
        # The TorchScript exporter: it keeps the op pattern onnxruntime's transformer
        # fusions know (the dynamo exporter's output fuses less, and bakes shapes unless
        # given dynamic_shapes for every input).
        torch.onnx.export(
            wrapper,
            args,
            str(path),
            input_names=names,
            output_names=outputs,
            dynamic_axes=dynamic,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    model = onnx.load(str(path))
    model.ir_version = min(model.ir_version, MAX_IR_VERSION)
    onnx.save(model, str(path))
    return outputs
