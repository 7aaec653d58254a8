"""embedrank server: gRPC transport (api/) -> engine (engine/) -> the model package's runtimes
(embedrank.model.runtime), configured by config.py and run by app.py.

It never imports torch, transformers or the exporter: the import-linter contracts in
pyproject.toml ([tool.importlinter], run by `make test`) enforce it.
"""
