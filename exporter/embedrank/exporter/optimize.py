"""Step 3: graph optimization presets (the names follow optimum's O1-O4).

- none: the exported graph as is (onnxruntime still applies its basic fusions at load).
- O1: onnxruntime's basic graph optimizations, saved offline.
- O2: O1 + transformer fusions (attention, SkipLayerNorm, BiasGelu, EmbedLayerNorm).
- O3: O2 + GELU approximated by FastGelu (faster, slightly less exact).
- O4: O3 + fp16 weights and activations; for the CUDA provider only.
"""

from __future__ import annotations

import enum
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from embedrank.exporter.graphfile import external_files

if TYPE_CHECKING:
    from embedrank.exporter.source import Source

# onnxruntime.transformers model types with attention fusions, by HF config model_type.
FUSION_MODEL_TYPES = {
    "bert": "bert", "roberta": "bert", "xlm-roberta": "bert", "camembert": "bert", "distilbert": "bert",
    "electra": "bert", "mpnet": "bert", "deberta-v2": "bert",
}

log = logging.getLogger(__name__)


class OptimizeLevel(enum.Enum):
    NONE = "none"
    O1 = "O1"
    O2 = "O2"
    O3 = "O3"
    O4 = "O4"


def optimize(source: Source, src: Path, dst: Path, level: OptimizeLevel) -> dict[str, int]:
    """Write the optimized graph to ``dst`` (with external data when ``src`` has it); returns the fused
    operator counts."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    model_type = FUSION_MODEL_TYPES.get(source.model_type)
    if level is OptimizeLevel.O1 or model_type is None:
        if model_type is None and level is not OptimizeLevel.O1:
            log.warning("no transformer fusions for model type %s; applying O1 only", source.model_type)
        optimized = optimize_model(str(src), model_type="bert", opt_level=1, only_onnxruntime=True)
    else:
        options = FusionOptions(model_type)
        options.enable_gelu_approximation = level in (OptimizeLevel.O3, OptimizeLevel.O4)
        optimized = optimize_model(
            str(src),
            model_type=model_type,
            num_heads=source.num_heads,
            hidden_size=source.hidden_size,
            optimization_options=options,
            opt_level=0,
        )
        if level is OptimizeLevel.O4:
            optimized.convert_float_to_float16(keep_io_types=True)
    stats = {k: int(v) for k, v in optimized.get_fused_operator_statistics().items() if v}
    # onnxruntime names the data file dst + ".data", as graphfile does.
    optimized.save_model_to_file(str(dst), use_external_data_format=bool(external_files(src)))
    return stats
