"""ONNX Runtime behind the Runtime interface: session options, providers, padding."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from embedrank.server.config import Device
from embedrank.server.errors import ConfigError
from embedrank.server.runtime.base import TokenSeq

log = logging.getLogger(__name__)

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
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # Threads sleep between batches instead of spinning: the cores are shared with the
        # event loop, gRPC and the tokenizer.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers: list[str] = [wanted] if device is Device.CPU else [wanted, "CPUExecutionProvider"]
        self._session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        self._inputs = tuple(i.name for i in self._session.get_inputs())
        self._outputs = tuple(o.name for o in self._session.get_outputs())
        unknown = set(self._inputs) - {"input_ids", "attention_mask", "token_type_ids"}
        if unknown:
            raise ConfigError(f"{path}: graph takes inputs embedrank cannot feed: {sorted(unknown)}")
        self._pad = pad_token_id
        self._provider = self._session.get_providers()[0]
        log.info("loaded %s on %s (%d threads): inputs %s", path, self._provider, threads, self._inputs)

    @property
    def outputs(self) -> tuple[str, ...]:
        return self._outputs

    @property
    def provider(self) -> str:
        return self._provider

    def run(self, batch: Sequence[TokenSeq]) -> dict[str, np.ndarray]:
        rows, width = len(batch), max(seq.length for seq in batch)
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
        values = self._session.run(None, feed)
        return dict(zip(self._outputs, values, strict=True))

    def health(self) -> bool:
        return True
