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

Why int8 is kept: measured here (2026-11-30, all-MiniLM-L6-v2, 1,000 pydoc sentences against
ORT fp32; raw runtime in one process, 2 threads, sorted batches of 32; a shared 2-core box, so
speeds are noisy):

    variant                                        sentences/s  min cos   mean cos
    ORT fp32 (O2 graph)                                    240  1.0       1.0
    ORT int8 (dynamic, avx512-vnni, O2)                    264  0.98209   0.99446
    OpenVINO f32 (plain graph)                             122  1.0       1.0
    OpenVINO bf16 (plain graph)                            486  0.99997   0.99999
    OpenVINO int8, NNCF on the OV model (bf16 rest)        607  0.98927   0.99788
    OpenVINO int8, NNCF on the ONNX graph (QDQ), OV        165  0.98688   0.99787

The same five runtimes through embedrank's own runtime classes on the exported graphs, round robin
(5 rounds x 1.5 s each, so all share the noise; the box was at load ~10 from other work, hence the
low absolute numbers), texts/s:

    ORT fp32 (O2)          sentences  30.0   paragraphs  5.8
    ORT int8               sentences  63.7   paragraphs 12.6
    OpenVINO f32           sentences  42.2   paragraphs 12.0
    OpenVINO bf16          sentences  81.6   paragraphs 21.9
    OpenVINO int8 (NNCF)   sentences 159.2   paragraphs 35.5

The int8 export of all-MiniLM-L6-v2 (300 calibration texts) measured, against sentence-transformers
torch: parity min cosine 0.9877, fidelity (300 texts) min 0.9958, mean 0.9979, top-10 overlap 0.958.

NNCF int8 on OpenVINO's own model is faster than ORT int8 and more faithful (min 0.989 vs
0.982, mean 0.9979 vs 0.9945), so it is offered; NNCF's ONNX backend (QDQ graph) is not:
OpenVINO runs that graph several times slower.
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
