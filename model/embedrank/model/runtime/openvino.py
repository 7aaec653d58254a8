"""OpenVINO behind the Runtime interface: the CPU plugin, its precision hint, its model cache.

The only module of the server that imports ``openvino`` (the optional extra
``pip install 'embedrank[openvino]'``); without it, asking for an OpenVINO model is a
ConfigError that names that install line.

Way in: the ``openvino`` package's own API (``Core.compile_model`` on the exported ONNX file), not ONNX
Runtime's OpenVINO execution provider plugin, which listed no OpenVINO device here (docs/runtime-notes.md);
the own API also gives the precision hint per compiled model, the compiled-model cache, streams and NNCF IR.

Precision: ``fp32`` asks INFERENCE_PRECISION_HINT f32 (exact); ``bf16`` asks bf16 and is
refused on a CPU without native bf16 (AVX512-BF16 or AMX) unless forced: there OpenVINO emulates
it or falls back to f32 (not measured: this CPU has native bf16), so neither the speed nor the
figures measured at export would hold; ``int8`` is an NNCF-quantized graph whose remaining float layers run in
bf16 where native, else f32. Threads and streams follow the server's settings: one stream per
concurrent batch worker, ``threads`` per stream (by default one stream of one thread per core), threads
not pinned (the cores are shared with the event loop, gRPC and the tokenizer); a lone query runs on a
second model compiled as one stream over ``lone_threads``.
"""

from __future__ import annotations

import importlib
import logging
import queue
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from embedrank.model.errors import ConfigError
from embedrank.model.runtime.base import TokenSeq, pad_batch

log = logging.getLogger(__name__)

INSTALL_LINE = "pip install 'embedrank[openvino]'"
FORCE_BF16_FLAG = "--allow-bf16-without-native"
PRECISIONS = ("fp32", "bf16", "int8")
_INPUTS = {"input_ids", "attention_mask", "token_type_ids"}
_OUTPUTS = {"sentence_embedding", "pooled_embedding", "logits"}


def _name(port: Any, known: set[str]) -> str:
    """The port's name embedrank uses: a tensor can carry several (the ONNX output's and its producer's)."""
    names = port.get_names()
    return str(next((n for n in sorted(names) if n in known), port.any_name))


def load_openvino() -> ModuleType:
    """The openvino module, or a ConfigError naming the install line."""
    try:
        return importlib.import_module("openvino")
    except ImportError as exc:
        raise ConfigError(
            f"this model runs on OpenVINO, which is not installed ({exc}); install it with: {INSTALL_LINE}"
        ) from None


def cpu_capabilities() -> tuple[str, ...]:
    """The CPU plugin's OPTIMIZATION_CAPABILITIES (e.g. FP32, BF16, INT8)."""
    core = load_openvino().Core()
    return tuple(str(c) for c in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def check_bf16(capabilities: Sequence[str], *, allow: bool, where: str, flag: str = FORCE_BF16_FLAG) -> None:
    """Refuse bf16 where the CPU has no native bf16 (OpenVINO would emulate it, slower than f32)."""
    if "BF16" in capabilities or allow:
        return
    raise ConfigError(
        f"{where}: bf16 needs a CPU with native bf16 (AVX512-BF16 or AMX); this one offers "
        f"{', '.join(capabilities) or 'nothing'}, so bf16 would be emulated or fall back to f32, without its "
        "speed and without the figures measured for it. "
        f"Use fp32 (exact) or int8 here, or pass {flag} to run bf16 anyway"
    )


class OvRuntime:
    """One compiled model on the CPU plugin; a pool of infer requests, one per concurrent batch."""

    def __init__(
        self,
        path: Path,
        *,
        threads: int,
        streams: int,
        pad_token_id: int,
        lone_threads: int = 0,
        precision: str,
        cache_dir: Path | None,
        allow_bf16_without_native: bool = False,
    ) -> None:
        ov = load_openvino()
        if precision not in PRECISIONS:
            raise ConfigError(f"{path}: precision {precision!r} is not one OpenVINO serves ({', '.join(PRECISIONS)})")
        core = ov.Core()
        capabilities = tuple(str(c) for c in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
        if precision == "bf16":
            check_bf16(capabilities, allow=allow_bf16_without_native, where=str(path))
        native_bf16 = "BF16" in capabilities
        hint = {"fp32": "f32", "bf16": "bf16", "int8": "bf16" if native_bf16 else "f32"}[precision]
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": hint,
            "NUM_STREAMS": max(1, streams),
            "ENABLE_CPU_PINNING": False,
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads * max(1, streams)
        if cache_dir is not None:
            try:
                cache_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"OpenVINO cache dir {cache_dir}: cannot create it ({exc})") from None
            config["CACHE_DIR"] = str(cache_dir)
        self._compiled = self._compile(core, path, config)
        # A lone small batch (run on the event loop while nothing else runs): a second model
        # compiled as one stream over more threads, when that is more than a stream of the first has.
        per_stream = int(self._compiled.get_property("INFERENCE_NUM_THREADS")) // max(1, streams)
        self._lone: Any = None
        if lone_threads > max(1, per_stream):
            lone = self._compile(core, path, {**config, "NUM_STREAMS": 1, "INFERENCE_NUM_THREADS": lone_threads})
            self._lone = lone.create_infer_request()
        self._inputs = tuple(_name(i, _INPUTS) for i in self._compiled.inputs)
        self._outputs = tuple(_name(o, _OUTPUTS) for o in self._compiled.outputs)
        unknown = set(self._inputs) - _INPUTS
        if unknown:
            raise ConfigError(f"{path}: graph takes inputs embedrank cannot feed: {sorted(unknown)}")
        self._requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pad = pad_token_id
        self.precision = precision
        hint_type = self._compiled.get_property("INFERENCE_PRECISION_HINT")
        self.inference_precision = str(getattr(hint_type, "to_string", lambda: hint_type)())
        log.info(
            "loaded %s on OpenVINO %s CPU (%s, inference precision %s, %s streams, %s threads%s, cache %s): inputs %s",
            path, ov.__version__.split("-")[0], precision, self.inference_precision, self._compiled.get_property("NUM_STREAMS"),
            self._compiled.get_property("INFERENCE_NUM_THREADS"),
            f"; a lone batch on {lone_threads} threads" if self._lone is not None else "", cache_dir or "off", self._inputs,
        )

    @staticmethod
    def _compile(core: Any, path: Path, config: dict[str, Any]) -> Any:
        try:
            # From the path, so the cache is keyed on the file and a restart skips compiling.
            return core.compile_model(str(path), "CPU", config)
        except RuntimeError as exc:
            raise ConfigError(f"{path}: OpenVINO cannot compile it ({str(exc).splitlines()[0]}); re-export it") from None

    @property
    def outputs(self) -> tuple[str, ...]:
        return self._outputs

    @property
    def provider(self) -> str:
        return "OpenVINO CPU"

    def run(self, batch: Sequence[TokenSeq], *, lone: bool = False) -> dict[str, np.ndarray]:
        feed = pad_batch(batch, self._pad, with_type_ids="token_type_ids" in self._inputs)
        if lone and self._lone is not None:  # only ever on the event-loop thread: one request
            return self._infer(self._lone, feed)
        try:
            request = self._requests.get_nowait()
        except queue.Empty:
            request = self._compiled.create_infer_request()
        try:
            return self._infer(request, feed)
        finally:
            self._requests.put(request)

    def _infer(self, request: Any, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        # Inputs copied into the request's own tensors (a few KB a batch): with share_inputs=True a
        # request keeps pointing at numpy memory freed after the call, and a benchmark script that
        # then dropped such requests died of heap corruption in 2 of 3 runs (openvino 2026.4.1).
        result = request.infer(feed, share_inputs=False, share_outputs=False)
        return {name: np.asarray(result[i]) for i, name in enumerate(self._outputs)}

    def health(self) -> bool:
        return True

    def trim(self) -> None:
        """OpenVINO keeps its own buffers per infer request; nothing to hand back."""
