#!/usr/bin/env bash
# Runs on the GPU machine lent through the `device` tool, in the last call (docs/gpu-run.md):
#   bash bench/gpu_device.sh --stage                 (each staging call: keep the part it carried)
#   bash bench/gpu_device.sh [bench/gpu.py options]  (the last call: join, install, run)
# Joins the parts that bench/gpu_stage.sh made (carried one a call; each call copied its part to
# /tmp/embedrank-stage), installs the wheels into /tmp/site for the machine's python3, runs
# `bash bench/run.sh --device cuda` and leaves the report, raw results and logs in $OUT.
set -uo pipefail
STAGE=/tmp/embedrank-stage
OUT="${OUT:-/tmp/embedrank-out}"
mkdir -p "$STAGE" "$OUT"
for dir in .gpu/p[0-9]*; do [ -d "$dir" ] && cp -n "$dir"/part-* "$STAGE"/; done
want="$(cat .gpu/project/PARTS)"
have="$(ls "$STAGE" | wc -l)"
if [ "${1:-}" = "--stage" ]; then  # a staging call: keep this call's part, say how many are here
  echo "gpu_device: $have of $want parts in $STAGE"
  exit 0
fi
if [ "$have" != "$want" ]; then
  echo "gpu_device: $have of $want parts in $STAGE (a fresh machine lost the earlier calls' parts): stage them again" >&2
  exit 3
fi
if [ ! -d /tmp/site/onnxruntime ]; then
  rm -rf /tmp/embedrank-wheels && mkdir -p /tmp/embedrank-wheels
  cat "$STAGE"/part-* | tar -x -C /tmp/embedrank-wheels || exit 3
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    /tmp/embedrank-wheels/wheels/*.whl || exit 3
fi
# The project itself, fresh each time (small).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/project/*.whl || exit 3
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 EMBEDRANK_GIT_SHA="$(cat .gpu/project/SHA)"
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv
python3 -c "import onnxruntime as o; o.preload_dlls(); print('onnxruntime', o.__version__, o.get_available_providers())"
PYTHON=python3 bash bench/run.sh --device cuda "$@" 2>&1 | tee "$OUT/bench.log"
rc=${PIPESTATUS[0]}
cp docs/benchmarks-gpu.md .cache/bench/work/gpu-results.json .cache/bench/work/gpu-server.log \
  .cache/bench/work/gpu-st.log "$OUT"/ 2>/dev/null
exit "$rc"
