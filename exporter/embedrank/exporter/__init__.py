"""embedrank exporter: checkpoint -> ONNX graph (+ pooling, Dense, Normalize) -> optimize ->
quantize -> verify against sentence-transformers -> package into a model repository.

One module per step. torch, transformers and sentence-transformers are imported inside
functions, so `embedrank --help` works without them; a missing one raises an error that
names the install command (`pip install '.[export]'` in a checkout).
"""
