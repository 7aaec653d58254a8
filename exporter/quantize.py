"""Step 4: dynamic int8 quantization presets (weights int8 offline, activations at run time).

Run after optimization: fused Attention/MatMul nodes get quantized whole.
"""

from __future__ import annotations

import enum
from pathlib import Path


class QuantizePreset(enum.Enum):
    NONE = "none"
    AVX2 = "avx2"
    AVX512 = "avx512"
    AVX512_VNNI = "avx512-vnni"
    ARM64 = "arm64"


# preset -> (weight type, per-channel). u8 activations x s8 weights is what the x86
# VNNI/AVX-512 kernels are fastest at; AVX2 without VNNI saturates s8 x u8, so u8 weights
# there, as optimum's avx2 preset does; ARM64 dot-product kernels prefer s8 x s8.
_PRESETS = {
    QuantizePreset.AVX2: ("QUInt8", False),
    QuantizePreset.AVX512: ("QInt8", True),
    QuantizePreset.AVX512_VNNI: ("QInt8", True),
    QuantizePreset.ARM64: ("QInt8", True),
}


def quantize(src: Path, dst: Path, preset: QuantizePreset, *, exclude_nodes: list[str] | None = None) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weight_type, per_channel = _PRESETS[preset]
    quantize_dynamic(
        str(src),
        str(dst),
        weight_type=getattr(QuantType, weight_type),
        per_channel=per_channel,
        op_types_to_quantize=["MatMul", "Attention"],
        nodes_to_exclude=exclude_nodes or [],
        extra_options={"MatMulConstBOnly": True},
    )
