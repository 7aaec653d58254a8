# Two commands on a fresh machine: `make demo` (install, export, serve, call) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
MODEL_REPO ?= models

.PHONY: install demo serve test protos bench

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[export,dev,bench]'
	touch $@

install: $(VENV)/.installed

# Export the packaged all-MiniLM-L6-v2 into ./models, serve it, encode sentences, print similarities.
demo: install
	$(BIN)/python clients/python/examples/quickstart.py --model-repository $(MODEL_REPO)

# Serve ./models on port 50051 until Ctrl-C (after `make demo` exported a model).
serve: install
	$(BIN)/embedrank serve --model-repository $(MODEL_REPO)

# Generated code is current, then every test (Python, and the Go and Java clients against a live server).
test: install
	PYTHON=$(BIN)/python bash protos/generate.sh --check
	$(BIN)/python -m pytest -ra

protos: install
	PYTHON=$(BIN)/python bash protos/generate.sh

bench: install
	bash bench/run.sh
