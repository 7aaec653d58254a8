#!/usr/bin/env bash
# `make arm64-check`: the server on aarch64, checked on an x86-64 Linux box under emulation.
#
# Builds (once, cached in .cache/arm64/root) a Debian bookworm arm64 root with debootstrap, run through
# qemu-user-static and binfmt_misc; installs this checkout's server there (`pip install .`: aarch64
# wheels of onnxruntime, tokenizers, grpcio); exports models on the host (an embedding model and a
# reranker, fp32 and --quantize arm64); serves them from the arm64 root and compares what it answers
# with sentence-transformers on the host (tests/arm64/compare.py). Emulation says nothing about speed:
# the figures are fidelity only.
#
# Needs root (debootstrap, chroot), apt-get (installs qemu-user-static, debootstrap, binfmt-support
# when missing) and a kernel that lets binfmt_misc be mounted (mounted here when it is not). The host's
# /proc and /sys are NOT mounted in the root: with them ONNX Runtime reads the x86 host's cpuinfo and
# crashes under emulation; without them it warns and runs. Where it cannot run, it says why in one line
# and exits 3. Slow (measured 2026-12-07 on 2 cores: 20 min from nothing, of which the root and the
# install 10 min; 8 min with them cached), so it is not part of `make test`: run it after changing
# dependencies, the runtime layer or the quantization presets, and before a release.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
CACHE=${ARM64_CACHE:-.cache/arm64}
ROOT=$CACHE/root
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
NICE="nice -n ${ARM64_NICE:-10}"

cannot() { echo "arm64-check: cannot run here: $*" >&2; exit 3; }

[ "$(uname -s)" = Linux ] || cannot "needs Linux (binfmt_misc, chroot); this is $(uname -s)"
[ "$(uname -m)" = x86_64 ] || cannot "built for an x86-64 host emulating aarch64; this is $(uname -m) (on aarch64, run make test itself)"
[ "$(id -u)" = 0 ] || cannot "needs root for debootstrap and chroot (run: sudo make arm64-check)"
if ! command -v debootstrap >/dev/null || ! command -v qemu-aarch64-static >/dev/null || ! command -v update-binfmts >/dev/null; then
  command -v apt-get >/dev/null || cannot "needs qemu-user-static, debootstrap and binfmt-support, and there is no apt-get to install them"
  apt-get install -y -q qemu-user-static debootstrap binfmt-support >/dev/null \
    || cannot "apt-get could not install qemu-user-static, debootstrap and binfmt-support"
fi
if ! grep -q binfmt_misc /proc/mounts; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null \
    || cannot "binfmt_misc is not mounted and cannot be (a container without privileges?)"
fi
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 \
  || cannot "qemu-aarch64 could not be registered with binfmt_misc"
grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64 || cannot "qemu-aarch64 is registered with binfmt_misc but disabled"
$PY -c "import sentence_transformers, torch" 2>/dev/null || cannot "the host needs the exporter: pip install '.[export]'"

mkdir -p "$CACHE"
if [ ! -e "$ROOT/.ready" ]; then
  echo "== building the arm64 root (debootstrap, emulated; minutes)"
  rm -rf "$ROOT.tmp"
  $NICE debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    bookworm "$ROOT.tmp" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || cannot "debootstrap failed (log: $CACHE/debootstrap.log)"
  rm -rf "$ROOT" && mv "$ROOT.tmp" "$ROOT" && touch "$ROOT/.ready"
fi
cp /usr/bin/qemu-aarch64-static "$ROOT/usr/bin/"  # for binfmt registrations without the F flag
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
# The host's CA bundle: it may trust a TLS-inspecting proxy that the root's own bundle does not.
[ -f /etc/ssl/certs/ca-certificates.crt ] && cp -L /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
# Commands in the root get a clean environment (the host's PIP_*/SSL_* settings name host paths).
root_env=(env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/tmp LANG=C.UTF-8
  SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt PIP_CERT=/etc/ssl/certs/ca-certificates.crt)
in_root() { $NICE chroot "$ROOT" "${root_env[@]}" "$@"; }
[ "$(in_root uname -m)" = aarch64 ] || cannot "the arm64 root does not run as aarch64"

# The server, installed from this checkout's files (tracked and new); reinstalled when they change.
files=$(git ls-files -co --exclude-standard pyproject.toml README.md model server cli exporter clients/python protos/python)
stamp=$(echo "$files" | xargs sha256sum | sha256sum | cut -c1-16)
if [ "$(cat "$ROOT/.installed" 2>/dev/null)" != "$stamp" ]; then
  echo "== installing the server in the arm64 root (pip install ., emulated; minutes)"
  rm -rf "$ROOT/src" && mkdir -p "$ROOT/src"
  echo "$files" | tar -cf - -T - | tar -xf - -C "$ROOT/src"
  [ -x "$ROOT/opt/venv/bin/python" ] || in_root python3 -m venv /opt/venv
  in_root /opt/venv/bin/pip install -q --disable-pip-version-check /src >"$CACHE/pip.log" 2>&1 \
    || cannot "pip install . failed in the arm64 root (log: $CACHE/pip.log)"
  echo "$stamp" >"$ROOT/.installed"
fi
in_root /opt/venv/bin/python -c "import onnxruntime, platform; print('arm64 root:', platform.machine(), 'onnxruntime', onnxruntime.__version__)"

echo "== exporting on the host (fp32 and --quantize arm64)"
work=$CACHE/work
rm -rf "$work" "$ROOT/repo" && mkdir -p "$work"
$NICE $PY tests/arm64/compare.py export --work "$work" --repository "$ROOT/repo"

echo "== serving from the arm64 root, comparing with sentence-transformers on the host"
rm -f "$ROOT/tmp/port"
# Started as a plain command, not through the in_root function: a function run in the background is a
# subshell, and killing it would leave the server running. nice, chroot and env exec in turn, and
# binfmt_misc runs qemu in the same process, so $! is the server itself.
$NICE chroot "$ROOT" "${root_env[@]}" /opt/venv/bin/embedrank serve --model-repository /repo --host 127.0.0.1 \
  --port 0 --port-file /tmp/port >"$CACHE/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 1 900); do
  [ -s "$ROOT/tmp/port" ] && break
  kill -0 $server 2>/dev/null || { tail -20 "$CACHE/serve.log" >&2; echo "arm64-check: the server did not start" >&2; exit 1; }
  sleep 1
done
[ -s "$ROOT/tmp/port" ] || { echo "arm64-check: the server did not start in 15 min" >&2; exit 1; }
$PY tests/arm64/compare.py compare --work "$work" --target "127.0.0.1:$(cat "$ROOT/tmp/port")"
