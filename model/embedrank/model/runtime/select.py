"""The runtime a model version names in its manifest, opened with the server's settings.

ONNX Runtime is always there; OpenVINO is imported only when a manifest asks for it, so a
server without the ``[openvino]`` extra serves every other model and names the install line
for the OpenVINO ones.
"""

from __future__ import annotations

from pathlib import Path

from embedrank.model.errors import ConfigError
from embedrank.model.manifest import Graph, RuntimeKind
from embedrank.model.runtime.base import Runtime
from embedrank.model.runtime.priority import on_lowered_thread
from embedrank.model.runtime.settings import Device, RuntimeSettings


def open_runtime(path: Path, graph: Graph, *, pad_token_id: int, settings: RuntimeSettings) -> Runtime:
    """Built on a thread lowered by ``settings.nice``, so the threads the runtime starts run lowered."""
    return on_lowered_thread(settings.nice, lambda: _open(path, graph, pad_token_id=pad_token_id, settings=settings))


def _open(path: Path, graph: Graph, *, pad_token_id: int, settings: RuntimeSettings) -> Runtime:
    if graph.runtime is RuntimeKind.OPENVINO:
        if settings.device is not Device.CPU:
            raise ConfigError(f"{path}: an OpenVINO model runs on the CPU only, not on {settings.device.value}; "
                              "serve it from a CPU server or export an onnxruntime variant of it")
        from embedrank.model.runtime.openvino import OvRuntime

        return OvRuntime(
            path,
            threads=settings.threads,
            streams=settings.workers,
            lone_threads=settings.lone_threads,
            pad_token_id=pad_token_id,
            precision=graph.precision,
            cache_dir=settings.openvino_cache_dir,
            allow_bf16_without_native=settings.allow_bf16_without_native,
        )
    from embedrank.model.runtime.onnx import OrtRuntime

    return OrtRuntime(
        path,
        device=settings.device,
        threads=settings.threads,
        pad_token_id=pad_token_id,
        precision=graph.precision,
        allow_fp16_on_cpu=settings.allow_fp16_on_cpu,
        small_batch_tokens=settings.small_batch_tokens,
        lone_threads=settings.lone_threads,
        cpu_arena=settings.cpu_arena,
        buckets=settings.buckets,
        max_batch_tokens=settings.max_batch_tokens,
        gpu_mem_limit_mb=settings.gpu_mem_limit_mb,
    )
