"""What `embedrank export` was asked for (the flags, parsed), shared by the pipeline and the kinds."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from embedrank.exporter.graphfile import ExternalData
from embedrank.exporter.optimize import OptimizeLevel
from embedrank.exporter.quantize import QuantizePreset
from embedrank.model.kinds import ModelKind
from embedrank.model.manifest import RuntimeKind


OPSET = 17  # the ONNX opset exported unless --opset says otherwise


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    source: str
    output: Path
    kind: ModelKind | None = None
    optimize: OptimizeLevel | None = None  # None: O2 for onnxruntime, none for openvino
    quantize: QuantizePreset = QuantizePreset.NONE
    runtime: RuntimeKind = RuntimeKind.ONNXRUNTIME
    precision: str | None = None  # None: fp32 for openvino; implied by optimize/quantize for onnxruntime
    allow_bf16_without_native: bool = False
    min_cosine: float | None = None
    min_top1: float = 0.9
    calibration: Path | None = None
    corpus_size: int = 1000
    fidelity: bool | None = None  # None: only for optimized-lossy or quantized graphs
    opset: int = OPSET
    trust_remote_code: bool = False  # run the checkpoint's own modeling code (auto_map)
    source_key: str | None = None  # recorded as source.key: `serve --model` finds the export by it
    external_data: ExternalData = ExternalData.AUTO  # weights in model.onnx.data: past 2 GiB (auto), always, never

    @property
    def lossy(self) -> bool:
        return (
            self.quantize is not QuantizePreset.NONE
            or self.optimize in (OptimizeLevel.O3, OptimizeLevel.O4)
            or self.precision in ("bf16", "int8")
        )
