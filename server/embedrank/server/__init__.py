"""embedrank server: gRPC transport (api/) -> engine (engine/) -> runtime (runtime/).

Importing this package must never import torch, transformers or the exporter
(tests/test_imports.py enforces it).
"""
