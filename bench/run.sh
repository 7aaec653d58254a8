#!/usr/bin/env bash
# The embedrank benchmark, one command:   bash bench/run.sh [--quick] [bench.py options]
#
# Needs the project's venv (.venv, from the README's set-up:
#   python3 -m venv .venv && .venv/bin/pip install -e '.[export,dev,bench]').
# Creates .venv-bench (git-ignored) for sentence-transformers' ONNX backend: it needs
# optimum-onnx, which pins transformers<4.58 and so an older sentence-transformers than the
# main venv's; and .venv-bench-ov for its OpenVINO backend (optimum-intel, with its own pins).
# Every venv's versions are written into the report.
#
# On a GPU:   bash bench/run.sh --device cuda [bench/gpu.py options]   -> docs/benchmarks-gpu.md
#             bash bench/run.sh --device cuda --smoke-cpu              (its code path on the CPU, ~3 min)
# runs bench/gpu.py in .venv (or, without one, in $PYTHON: a GPU machine's own Python with
# onnxruntime-gpu, torch and sentence-transformers; docs/gpu-run.md), and makes no other venv.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
for arg in "$@"; do
  if [ "$arg" = "--device" ] || [ "${arg#--device=}" != "$arg" ]; then
    if [ -x .venv/bin/python ]; then exec .venv/bin/python bench/gpu.py "$@"; fi
    exec "$PYTHON" bench/gpu.py "$@"
  fi
done
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import embedrank.exporter.export, sentence_transformers" 2>/dev/null; then
  echo "bench: .venv with embedrank[export] is missing; set it up first:" >&2
  echo "  $PYTHON -m venv .venv && .venv/bin/pip install -e '.[export,dev,bench]'" >&2
  exit 1
fi
if ! .venv/bin/python -c "import matplotlib" 2>/dev/null; then
  echo "bench: installing matplotlib into .venv (the 'bench' extra)"
  .venv/bin/pip install -q "matplotlib>=3.8"
fi
for arg in "$@"; do  # issue #27's figures alone need neither sentence-transformers venv
  if [ "$arg" = "--latency-only" ]; then exec .venv/bin/python bench/bench.py "$@"; fi
done
if ! .venv-bench/bin/python -c "import optimum.onnxruntime, sentence_transformers, onnxruntime" 2>/dev/null; then
  echo "bench: creating .venv-bench with sentence-transformers[onnx] (downloads torch; a few minutes once)"
  "$PYTHON" -m venv .venv-bench
  # Pinned: unpinned, pip backtracked for 24 min of CPU (2026-12-07) over optimum-onnx's transformers<4.58 pin.
  .venv-bench/bin/pip install -q "sentence-transformers[onnx]==5.7.0" "transformers==4.57.6" "torch==2.15.0" \
    "optimum==2.1.0" "optimum-onnx==0.1.0" "onnxruntime==1.32.0"
fi
if ! .venv-bench-ov/bin/python -c "import optimum.intel, openvino, sentence_transformers" 2>/dev/null; then
  echo "bench: creating .venv-bench-ov with sentence-transformers[openvino] (ST's OpenVINO backend; a few minutes once)"
  "$PYTHON" -m venv .venv-bench-ov
  .venv-bench-ov/bin/pip install -q "sentence-transformers[openvino]==6.3.0" "transformers==5.5.4" "torch==2.15.0" \
    "optimum-intel==2.2.0" "openvino==2026.4.1"
fi
exec .venv/bin/python bench/bench.py "$@"
