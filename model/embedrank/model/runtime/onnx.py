"""ONNX Runtime behind the Runtime interface: session options, providers, padding."""

from __future__ import annotations

import bisect
import ctypes
import logging
from collections.abc import Sequence
from typing import Any
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as _state

from embedrank.model.runtime.settings import Device
from embedrank.model.errors import ConfigError
from embedrank.model.manifest import EXTERNAL_DATA_SUFFIX
from embedrank.model.runtime.base import TokenSeq, pad_batch

log = logging.getLogger(__name__)

try:  # glibc only; elsewhere memory stays with the allocator
    _libc = ctypes.CDLL("libc.so.6")
    _libc.malloc_trim.argtypes = [ctypes.c_size_t]
    _LIBC: ctypes.CDLL | None = _libc
except (OSError, AttributeError):
    _LIBC = None

_PROVIDERS = {Device.CPU: "CPUExecutionProvider", Device.CUDA: "CUDAExecutionProvider"}
# What InferenceSession raises for a graph (or its external data) it cannot read.
_LOAD_ERRORS = (_state.Fail, _state.InvalidProtobuf, _state.InvalidGraph, _state.NoSuchFile, _state.RuntimeException)


def graph_bytes(path: Path) -> int:
    """The graph's size with its external data file, when it has one."""
    data = path.with_name(path.name + EXTERNAL_DATA_SUFFIX)
    return path.stat().st_size + (data.stat().st_size if data.exists() else 0)


class OrtRuntime:
    """One InferenceSession. Batches are right-padded with the tokenizer's pad id."""

    def __init__(
        self,
        path: Path,
        *,
        device: Device,
        threads: int,
        pad_token_id: int,
        precision: str,
        allow_fp16_on_cpu: bool = False,
        small_batch_tokens: int = 0,
        lone_threads: int = 0,
        cpu_arena: bool = False,
        buckets: Sequence[int] = (),
        max_batch_tokens: int = 8192,
        gpu_mem_limit_mb: int = 0,
    ) -> None:
        wanted = _PROVIDERS[device]
        available = ort.get_available_providers()
        if wanted not in available:
            raise ConfigError(
                f"--device {device.value}: {wanted} is not in this onnxruntime ({', '.join(available)}). "
                "For CUDA: pip uninstall -y onnxruntime && pip install onnxruntime-gpu"
            )
        if precision == "fp16" and device is Device.CPU and not allow_fp16_on_cpu:
            raise ConfigError(
                f"{path}: fp16 graph on the CPU provider runs slower than fp32; serve it with --device cuda, "
                "export an fp32/int8 variant for CPU, or pass --allow-fp16-on-cpu"
            )
        providers: list[Any] = [wanted]
        if device is Device.CUDA:
            # The CUDA and cuDNN libraries of onnxruntime-gpu's pip extras (Dockerfile.cuda): load
            # them from site-packages, no LD_LIBRARY_PATH needed (onnxruntime >= 1.21).
            if hasattr(ort, "preload_dlls"):
                ort.preload_dlls()
            # A bounded arena that grows only by what is asked (4 processes once held 49.9 GB
            # for a 90 MB model with the defaults).
            limit_mb = gpu_mem_limit_mb or (4 * graph_bytes(path) // 2**20 + 1024)
            providers = [
                (wanted, {"gpu_mem_limit": str(limit_mb * 2**20), "arena_extend_strategy": "kSameAsRequested"}),
                "CPUExecutionProvider",
            ]

        def session(*, spin: bool, threads: int) -> ort.InferenceSession:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.log_severity_level = 3
            # ORT's arena keeps its peak forever (a 2,000-text stream left ~250 MB behind); without
            # it, freed buffers go back to malloc, which ``trim`` hands back to the system.
            options.enable_cpu_mem_arena = cpu_arena
            options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
            if spin:
                # Spin between the operators of a run (no wake-up per operator), and stop the
                # moment the run returns: an idle server burns nothing.
                options.add_session_config_entry("session.force_spinning_stop", "1")
            try:
                # From the path, never from bytes: ONNX Runtime finds a graph's external data beside it.
                return ort.InferenceSession(str(path), sess_options=options, providers=providers)
            except _LOAD_ERRORS as exc:  # a damaged graph or weights file: this model is refused, not the server
                why = str(exc).strip().splitlines()[0][:400] if str(exc).strip() else type(exc).__name__
                data = path.with_name(path.name + EXTERNAL_DATA_SUFFIX)
                with_data = f" (with its weights {data.name})" if data.exists() else ""
                raise ConfigError(f"{path}{with_data}: onnxruntime cannot load it ({why}); "
                                  "copy the version again or re-export it") from None

        # Bulk batches: threads (if more than one) sleep between operators, leaving the cores to
        # the event loop, gRPC and the tokenizer, which share them under load (measured: faster overall).
        self._session = session(spin=False, threads=threads)
        # A lone small batch: a second session over more cores (lone_threads), whose threads spin
        # during a run. Worth it only with several threads.
        self._small_tokens = small_batch_tokens if device is Device.CPU and lone_threads > 1 else 0
        self._small = session(spin=True, threads=lone_threads) if self._small_tokens else None
        self._inputs = tuple(i.name for i in self._session.get_inputs())
        self._outputs = tuple(o.name for o in self._session.get_outputs())
        unknown = set(self._inputs) - {"input_ids", "attention_mask", "token_type_ids"}
        if unknown:
            raise ConfigError(f"{path}: graph takes inputs embedrank cannot feed: {sorted(unknown)}")
        self._pad = pad_token_id
        self._buckets = sorted(set(buckets))
        self._max_tokens = max_batch_tokens
        self._provider: str = self._session.get_providers()[0]
        log.info(
            "loaded %s on %s (%d threads%s): inputs %s", path, self._provider, threads,
            f"; a lone batch up to {self._small_tokens} tokens on a {lone_threads}-thread spinning session"
            if self._small else "", self._inputs,
        )

    @property
    def outputs(self) -> tuple[str, ...]:
        return self._outputs

    @property
    def provider(self) -> str:
        return self._provider

    def run(self, batch: Sequence[TokenSeq], *, lone: bool = False) -> dict[str, np.ndarray]:
        width = self._bucket(max(seq.length for seq in batch))
        feed = pad_batch(batch, self._pad, with_type_ids="token_type_ids" in self._inputs, width=width)
        # Spinning threads only when nothing else runs: under load they would take the cores
        # from the event loop and the tokenizer (measured: -25..40% sentences/s).
        small = lone and self._small is not None and len(batch) * width <= self._small_tokens
        values = (self._small if small else self._session).run(None, feed)  # type: ignore[union-attr]
        return dict(zip(self._outputs, values, strict=True))

    def _bucket(self, longest: int) -> int:
        """The padded width: the smallest bucket that fits, else the exact length."""
        i = bisect.bisect_left(self._buckets, longest)
        return self._buckets[i] if i < len(self._buckets) else longest

    def warm(self, max_rows: int) -> None:
        """Run each bucket's shape once (1 row and ``max_rows``): on CUDA the first run of a new
        shape is slow (fp16 up to 1.5 s measured), so none of that reaches a caller."""
        for width in self._buckets:
            for rows in sorted({1, max(1, min(max_rows, self._max_tokens // width))}):
                self.run([TokenSeq(np.full(width, self._pad, dtype=np.int64), None)] * rows)

    @staticmethod
    def trim() -> None:
        """Hand memory freed by past batches back to the system (glibc ``malloc_trim``)."""
        if _LIBC is not None:
            _LIBC.malloc_trim(0)

    def health(self) -> bool:
        return True
