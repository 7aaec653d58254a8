"""ONNX Runtime behind the Runtime interface: session options, providers, padding."""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from embedrank.server.config import Device
from embedrank.server.errors import ConfigError
from embedrank.server.runtime.base import TokenSeq

log = logging.getLogger(__name__)

try:  # glibc only; elsewhere memory stays with the allocator
    _LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6")
    _LIBC.malloc_trim.argtypes = [ctypes.c_size_t]
except (OSError, AttributeError):
    _LIBC = None

_PROVIDERS = {Device.CPU: "CPUExecutionProvider", Device.CUDA: "CUDAExecutionProvider"}


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
        cpu_arena: bool = False,
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
        providers: list[str] = [wanted] if device is Device.CPU else [wanted, "CPUExecutionProvider"]

        def session(*, spin: bool) -> ort.InferenceSession:
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
            return ort.InferenceSession(str(path), sess_options=options, providers=providers)

        # Bulk batches: threads sleep between operators, leaving the cores to the event loop,
        # gRPC and the tokenizer, which share them under load (measured: faster overall).
        self._session = session(spin=False)
        # Small batches (a lone query): a second session whose threads spin during a run.
        self._small_tokens = small_batch_tokens if device is Device.CPU and threads > 1 else 0
        self._small = session(spin=True) if self._small_tokens else None
        self._inputs = tuple(i.name for i in self._session.get_inputs())
        self._outputs = tuple(o.name for o in self._session.get_outputs())
        unknown = set(self._inputs) - {"input_ids", "attention_mask", "token_type_ids"}
        if unknown:
            raise ConfigError(f"{path}: graph takes inputs embedrank cannot feed: {sorted(unknown)}")
        self._pad = pad_token_id
        self._provider = self._session.get_providers()[0]
        log.info(
            "loaded %s on %s (%d threads%s): inputs %s", path, self._provider, threads,
            f"; batches up to {self._small_tokens} tokens on a spinning session" if self._small else "", self._inputs,
        )

    @property
    def outputs(self) -> tuple[str, ...]:
        return self._outputs

    @property
    def provider(self) -> str:
        return self._provider

    def run(self, batch: Sequence[TokenSeq]) -> dict[str, np.ndarray]:
        rows, width = len(batch), max(seq.length for seq in batch)
        if rows == 1:  # nothing to pad: feed views of the sequence, no copies
            return self._run_one(batch[0])
        ids = np.full((rows, width), self._pad, dtype=np.int64)
        mask = np.zeros((rows, width), dtype=np.int64)
        types = np.zeros((rows, width), dtype=np.int64) if "token_type_ids" in self._inputs else None
        for row, seq in enumerate(batch):
            n = seq.length
            ids[row, :n] = seq.ids
            mask[row, :n] = 1
            if types is not None and seq.type_ids is not None:
                types[row, :n] = seq.type_ids
        feed = {"input_ids": ids, "attention_mask": mask}
        if types is not None:
            feed["token_type_ids"] = types
        small = self._small is not None and rows * width <= self._small_tokens
        values = (self._small if small else self._session).run(None, feed)  # type: ignore[union-attr]
        return dict(zip(self._outputs, values, strict=True))

    def _run_one(self, seq: TokenSeq) -> dict[str, np.ndarray]:
        ids = seq.ids.reshape(1, -1)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids) if seq.type_ids is None else seq.type_ids.reshape(1, -1)
        small = self._small is not None and seq.length <= self._small_tokens
        values = (self._small if small else self._session).run(None, feed)  # type: ignore[union-attr]
        return dict(zip(self._outputs, values, strict=True))

    @staticmethod
    def trim() -> None:
        """Hand memory freed by past batches back to the system (glibc ``malloc_trim``)."""
        if _LIBC is not None:
            _LIBC.malloc_trim(0)

    def health(self) -> bool:
        return True
