"""Step 4: dynamic int8 quantization presets (weights int8 offline, activations at run time).

Runs after optimization, so the fused Attention nodes (Q, K and V projections) are quantized
whole along with the other MatMuls.

What we measured on all-MiniLM-L6-v2 (O2 graph, 1,000 pydoc texts, against fp32; speed as
texts per CPU-second on sentences, fp32 = 70):

    quantized                                   mean cos  min cos  top-10  speed
    MatMul + Attention, per-tensor weights      0.9618    0.9095   0.832   -
    MatMul only, per-channel                    0.9942    0.9838   0.912   105
    MatMul + Attention, per-channel             0.9932    0.9739   0.910   120
      ... minus layer 0's FFN down-projection   0.9945    0.9811   0.923   113   <- default
      ... minus every FFN down-projection       0.9964    0.9860   0.933    92

The FFN down-projection reads GELU outputs with large outliers, and the first layer's is the
most sensitive: leaving that one MatMul in fp32 buys most of the fidelity for ~5% of the speed.

Static int8 (onnxruntime quantize_static, MinMax calibration on 300 pydoc texts, MatMul only,
per-channel) was measured too and is not offered: the QOperator format fails on the fused graph in
onnxruntime 1.32 (AttributeError in quantization/operators/matmul.py); the QDQ format is far more
faithful (mean cos 0.9996, min 0.9987, top-10 0.974) but runs at 75 texts per CPU-second, no faster
than fp32, against 113 for the dynamic default.
"""

from __future__ import annotations

import enum
from pathlib import Path

from embedrank.exporter.graphfile import external_files


class QuantizePreset(enum.Enum):
    NONE = "none"
    AVX2 = "avx2"
    AVX512 = "avx512"
    AVX512_VNNI = "avx512-vnni"
    ARM64 = "arm64"


# preset -> (weight type, per-channel). u8 activations x s8 weights is what the x86
# VNNI/AVX-512 kernels are fastest at; AVX2 without VNNI can saturate s8 x u8, so u8 weights
# there, as optimum's avx2 preset does; ARM64 dot-product kernels take s8 x s8.
_PRESETS = {
    QuantizePreset.AVX2: ("QUInt8", True),
    QuantizePreset.AVX512: ("QInt8", True),
    QuantizePreset.AVX512_VNNI: ("QInt8", True),
    QuantizePreset.ARM64: ("QInt8", True),
}


def first_down_projection(path: Path) -> list[str]:
    """The first MatMul whose constant weight narrows (e.g. 1536 -> 384): layer 0's FFN output."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    shapes = {init.name: tuple(init.dims) for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "MatMul" and len(node.input) == 2:
            dims = shapes.get(node.input[1])
            if dims and len(dims) == 2 and dims[0] >= 2 * dims[1]:
                return [node.name]
    return []


def quantize(src: Path, dst: Path, preset: QuantizePreset) -> list[str]:
    """Write the int8 graph (with external data when ``src`` has it: publish_graph decides whether the
    published graph keeps it); returns the nodes left in fp32."""
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weight_type, per_channel = _PRESETS[preset]
    excluded = first_down_projection(src)
    dst.parent.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(
        str(src),
        str(dst),
        weight_type=getattr(QuantType, weight_type),
        per_channel=per_channel,
        op_types_to_quantize=["MatMul", "Attention"],
        nodes_to_exclude=excluded,
        # Fused contrib ops (Attention, SkipLayerNorm) defeat onnx shape inference; their
        # outputs are float.
        extra_options={"MatMulConstBOnly": True, "DefaultTensorType": TensorProto.FLOAT},
        use_external_data_format=bool(external_files(src)),  # written as dst + ".data"
    )
    return excluded
