"""Runtimes run padded batches through a model graph. Only ONNX Runtime for now."""

from embedrank.server.runtime.base import Runtime, TokenSeq
from embedrank.server.runtime.onnx import OrtRuntime

__all__ = ["OrtRuntime", "Runtime", "TokenSeq"]
