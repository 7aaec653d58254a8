"""How a runtime is opened: the device and the thread, memory and precision settings of one model.

Built once from the server's flags (``embedrank.server.config``) or the exporter's, then handed down
as it is; the runtimes read it and decide nothing else about threads or providers.
"""

from __future__ import annotations

import dataclasses
import enum
import os
from pathlib import Path

from embedrank.model.flags import setting


class Device(enum.Enum):
    CPU = "cpu"
    CUDA = "cuda"


@dataclasses.dataclass(frozen=True, kw_only=True)
class RuntimeFlags:
    """Runtime flags that `embedrank serve` and `embedrank export` both take, declared once."""

    allow_bf16_without_native: bool = setting(
        False,
        help=(
            "Export (--precision bf16) or serve OpenVINO bf16 models on a CPU without native bf16 "
            "(AVX512-BF16 or AMX) anyway: there OpenVINO emulates bf16 or falls back to f32, and the "
            "figures measured at export are that run's."
        ),
    )


@dataclasses.dataclass(frozen=True)
class RuntimeSettings:
    device: Device = Device.CPU
    threads: int = 0  # per batch run; 0 = the runtime decides
    workers: int = 1  # batches run at once (OpenVINO streams)
    allow_fp16_on_cpu: bool = False
    allow_bf16_without_native: bool = False
    openvino_cache_dir: Path | None = None
    small_batch_tokens: int = 0
    lone_threads: int = 0  # threads of the lone-query session; 0 = none
    cpu_arena: bool = False
    buckets: tuple[int, ...] = ()  # padded lengths (CUDA); empty = exact lengths
    max_batch_tokens: int = 8192
    gpu_mem_limit_mb: int = 0  # CUDA arena bound; 0 = sized from the model
    nice: int = 0  # how much lower the runtime's own threads run than the caller (priority.py)


def default_openvino_cache() -> Path:
    """$XDG_CACHE_HOME/embedrank/openvino (~/.cache/... when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "embedrank" / "openvino"
