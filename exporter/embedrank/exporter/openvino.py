"""Exports for the OpenVINO runtime: the option rules and NNCF int8 (step 4 for OpenVINO).

OpenVINO reads the exported ONNX graph itself, but not ONNX Runtime's fused contrib ops
(Attention, SkipLayerNormalization, BiasGelu, EmbedLayerNormalization): an OpenVINO export
keeps the plain graph (``--optimize none``) and OpenVINO fuses it its own way when compiling.

Precisions:
- fp32: the plain graph, INFERENCE_PRECISION_HINT f32 (exact: gate min cosine 0.99999).
- bf16: the same graph, hint bf16; needs native bf16 (AVX512-BF16 or AMX), gated on the
  fidelity corpus (min cosine 0.9999; rerankers: logits within 1e-2, same top-1).
- int8: NNCF post-training (static) quantization of the graph on the export's calibration
  texts, saved as OpenVINO IR (model.xml + model.bin); the float layers left run in bf16 where
  native. Gate as for ONNX Runtime int8 (mean cosine 0.99; rerankers --min-top1).

NNCF int8 on OpenVINO's own model is kept because it measured faster than ONNX Runtime int8 and more
faithful; NNCF's ONNX backend (QDQ graph) is not, OpenVINO runs that graph several times slower. The
figures: docs/runtime-notes.md.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from embedrank.exporter.optimize import OptimizeLevel
from embedrank.exporter.quantize import QuantizePreset
from embedrank.model.tokenize import TextTokenizer, Truncate
from embedrank.model.errors import ConfigError
from embedrank.model.manifest import RuntimeKind
from embedrank.model.runtime.base import pad_batch
from embedrank.model.runtime.openvino import (
    FORCE_BF16_FLAG,
    INSTALL_LINE,
    PRECISIONS,
    check_bf16,
    cpu_capabilities,
    load_openvino,
)

log = logging.getLogger(__name__)

CALIBRATION_ITEMS = 300


def resolve(
    runtime: RuntimeKind, precision: str | None, optimize: OptimizeLevel | None, quantize: QuantizePreset
) -> tuple[str, OptimizeLevel]:
    """(precision, optimize level) for the export, or a ConfigError that says what to pick."""
    if runtime is RuntimeKind.ONNXRUNTIME:
        level = optimize or OptimizeLevel.O2
        implied = "int8" if quantize is not QuantizePreset.NONE else "fp16" if level is OptimizeLevel.O4 else "fp32"
        if precision is not None and precision != implied:
            how = {"int8": "--quantize avx512-vnni (or avx2, avx512, arm64)", "fp16": "--optimize O4",
                   "fp32": "no --quantize and --optimize none..O3",
                   "bf16": "--runtime openvino --precision bf16"}.get(precision, "one of fp32, fp16, int8")
            raise ConfigError(f"--precision {precision} with --runtime onnxruntime: for it use {how}")
        return implied, level
    if precision is None:
        precision = "fp32"
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision {precision!r} with --runtime openvino: choose one of {', '.join(PRECISIONS)}")
    if optimize not in (None, OptimizeLevel.NONE):
        raise ConfigError(
            f"--optimize {optimize.value} with --runtime openvino: OpenVINO cannot read ONNX Runtime's fused "
            "contrib ops; leave --optimize out (an OpenVINO export keeps the plain graph, 'none')"
        )
    if quantize is not QuantizePreset.NONE:
        raise ConfigError(
            "--quantize is ONNX Runtime's dynamic int8; for OpenVINO use --precision int8 (NNCF post-training "
            "quantization), or --runtime onnxruntime --quantize avx512-vnni"
        )
    return precision, OptimizeLevel.NONE


def check_bf16_here(allow: bool) -> None:
    """The export measures bf16 on this CPU: refuse where it has no native bf16."""
    try:
        capabilities = cpu_capabilities()
    except ConfigError as exc:
        raise ConfigError(exc.message.replace("this model runs", "--runtime openvino runs")) from None
    check_bf16(capabilities, allow=allow, where="--precision bf16", flag=FORCE_BF16_FLAG)


def quantize_int8(src: Path, dst_xml: Path, tokenizer: TextTokenizer, inputs: Sequence[str],
                  texts: Sequence[str] | Sequence[tuple[str, str]], *, pad_token_id: int) -> dict[str, Any]:
    """NNCF static int8 of the ONNX graph ``src`` into OpenVINO IR ``dst_xml`` (+ .bin)."""
    ov = load_openvino()
    try:
        import nncf
    except ImportError as exc:
        raise ConfigError(f"--precision int8 with --runtime openvino needs NNCF ({exc}); install it with: "
                          f"{INSTALL_LINE}") from None
    items = texts[:CALIBRATION_ITEMS]
    seqs, _ = tokenizer.encode(items, truncate=Truncate.END, field="calibration")
    samples = [pad_batch([seq], pad_token_id, with_type_ids="token_type_ids" in inputs) for seq in seqs]
    model = ov.Core().read_model(str(src))
    quantized = nncf.quantize(
        model, nncf.Dataset(samples), model_type=nncf.ModelType.TRANSFORMER, subset_size=len(samples)
    )
    ov.save_model(quantized, str(dst_xml))
    return {"tool": "nncf", "nncf": str(nncf.__version__), "openvino": str(ov.__version__),
            "calibration_items": len(samples), "model_type": "transformer"}
