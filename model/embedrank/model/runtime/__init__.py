"""Runtimes run padded batches through a model graph: ONNX Runtime (onnx.py) and OpenVINO
(openvino.py, the optional ``[openvino]`` extra, imported only when a manifest names it);
``select.open_runtime`` opens the one a model version's manifest names, with ``settings.RuntimeSettings``.
``base.Runtime`` is the interface the engine and the exporter's verify step talk to."""
