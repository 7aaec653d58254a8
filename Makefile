# Two commands on a fresh machine: `make demo` (install, export, serve, call) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
MODEL_REPO ?= models
# setuptools prints a warning block on every editable install; it is about folders shadowing the
# package, which this layout (source roots model/, server/, exporter/, ... each holding embedrank/) does not have.
PIP_INSTALL := PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip install -q

.PHONY: install install-demo demo serve test protos bench chart-check arm64-check import-venv

# The demo needs the server, the client and the exporter (torch, sentence-transformers); no test
# or benchmark tools. On Linux x86-64, PyPI's torch is the CUDA build (about 4 GB more with its nvidia-*
# packages): the exporter only traces on the CPU, so PyTorch's CPU-only wheels are tried first from
# PyTorch's own index (TORCH_INDEX; a few seconds lost where it cannot be reached), then PyPI's build.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
$(VENV)/.demo: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --timeout 5 --retries 0 --index-url $(TORCH_INDEX) torch 2>/dev/null \
	  && echo "torch: PyTorch's CPU-only build" || echo "torch: PyTorch's CPU index not reachable; PyPI's build"
	$(PIP_INSTALL) -e '.[export]'
	touch $@

# Everything: the demo's packages, plus the test tools (pytest, grpcio-tools, mypy, the SDKs the tests
# call), the bench's (tqdm, matplotlib) and FlagEmbedding (bgem3: the BGE-M3 exporter's reference).
$(VENV)/.installed: $(VENV)/.demo
	$(PIP_INSTALL) -e '.[export,dev,bench,bgem3]'
	touch $@

install-demo: $(VENV)/.demo
install: $(VENV)/.installed

# Export the packaged all-MiniLM-L6-v2 into ./models, serve it on a free port, encode sentences,
# print similarities.
demo: install-demo
	$(BIN)/python clients/python/examples/quickstart.py --model-repository $(MODEL_REPO)

# Serve ./models on port 50051 until Ctrl-C (after `make demo` exported a model).
serve: install-demo
	$(BIN)/embedrank serve --model-repository $(MODEL_REPO)

# The chart check (below), generated code is current, mypy --strict over the package, the import
# layers (lint-imports, [tool.importlinter] in pyproject.toml), then every
# test (Python, and the Go and Java clients against a live server). CI runs exactly this (.ci/run).
test: install chart-check
	PYTHON=$(BIN)/python bash protos/generate.sh --check
	PYTHON=$(BIN)/python bash .ci/typecheck
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -ra

protos: install
	PYTHON=$(BIN)/python bash protos/generate.sh

bench: install
	bash bench/run.sh

# The Helm chart (deploy/helm/embedrank) rendered with each value set and every manifest validated
# offline; part of `make test`, needs Go (no venv). helm is built with `go install` into .tools/ once
# per clone: about 10 s with Go's module and build caches (~/go, ~/.cache/go-build) warm, 7-8 min
# on a 2-core box when they are cold.
HELM_VERSION := v3.22.0
.tools/bin/helm:
	GOBIN=$(CURDIR)/.tools/bin go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

chart-check: .tools/bin/helm
	bash deploy/helm/check.sh

# The server on aarch64 under emulation (qemu-user-static + binfmt_misc, a debootstrap'ed arm64 root
# cached in .cache/arm64): serves models exported here (fp32 and --quantize arm64, an embedding model
# and a reranker) and compares them with sentence-transformers. Root only; says in one line why it
# cannot run where it cannot. Not in `make test`: the first run builds the root (~10-20 min on 2 cores),
# later ones take minutes. Run it after changing dependencies, the runtime layer or the quantization
# presets, and before a release (tests/arm64/check.sh; the figures are in the README's edge section).
arm64-check: install
	PYTHON=$(BIN)/python bash tests/arm64/check.sh

# The torch-free install (`pip install -e '.[import]'`: `embedrank import`, `serve --model` of checkpoints
# that ship onnx/model.onnx) in .cache/venv-import, as tests/test_import.py builds and reuses it; prints its size.
import-venv:
	bash tests/import_venv.sh
