"""Runtimes run padded batches through a model graph: ONNX Runtime (onnx.py) and OpenVINO
(openvino.py, the optional ``[openvino]`` extra, imported only when a manifest names it);
``select.open_runtime`` opens the one a model version's manifest names."""

from embedrank.server.runtime.base import Runtime, TokenSeq
from embedrank.server.runtime.onnx import OrtRuntime

__all__ = ["OrtRuntime", "Runtime", "TokenSeq"]
