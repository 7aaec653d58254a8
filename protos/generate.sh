#!/usr/bin/env bash
# Generates every language's stubs from protos/ (the contract). Never edit the
# output by hand. `protos/generate.sh --check` fails if the committed files
# differ from a fresh generation (CI runs that).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
py=${PYTHON:-python}
protos=(protos/embedrank/v1/*.proto)
# TEI's gRPC API (package tei.v1), served beside embedrank.v1: Python stubs only (the server's);
# TEI's users bring their own clients, generated from TEI's file (the same wire).
tei_protos=(protos/embedrank/tei/v1/*.proto)

gen_python() {
  local out=protos/python
  rm -f "$out"/embedrank/v1/*_pb2*.py "$out"/embedrank/v1/*_pb2*.pyi
  rm -f "$out"/embedrank/tei/v1/*_pb2*.py "$out"/embedrank/tei/v1/*_pb2*.pyi
  "$py" -m grpc_tools.protoc -I protos --python_out="$out" --pyi_out="$out" \
    --grpc_python_out="$out" "${protos[@]}" "${tei_protos[@]}"
  for pkg in embedrank/v1 embedrank/tei/v1; do
    printf '"""Generated from protos/%s by protos/generate.sh; do not edit."""\n' "$pkg" \
      > "$out/$pkg/__init__.py"
  done
}

gen_go() {
  # protoc comes from grpcio-tools; the Go plugins are pinned here.
  local bin="$root/.cache/gobin"
  mkdir -p "$bin"
  GOBIN="$bin" go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.10
  GOBIN="$bin" go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
  local out=clients/go/gen/embedrankv1
  mkdir -p "$out"
  rm -f "$out"/*.pb.go
  PATH="$bin:$PATH" "$py" -m grpc_tools.protoc -I protos \
    --go_out=clients/go --go_opt=paths=import \
    --go_opt=module=github.com/embedrank/embedrank/clients/go \
    --go-grpc_out=clients/go --go-grpc_opt=paths=import \
    --go-grpc_opt=module=github.com/embedrank/embedrank/clients/go \
    "${protos[@]}"
}

# clients/service-config.json, the service config every client uses, copied where the Python
# package and Go's go:embed can read it (Java packs it from there at build time: pom.xml).
shared_config() {
  cp clients/service-config.json clients/python/embedrank/client/service_config.json
  cp clients/service-config.json clients/go/service_config.json
}

langs=${LANGS:-python go}
check=0
[ "${1:-}" = "--check" ] && check=1
for lang in $langs; do "gen_$lang"; done
shared_config
# Java stubs are generated at build time by protobuf-maven-plugin from the
# same protos/ (clients/java/pom.xml), so nothing of Java is committed.

if [ "$check" = 1 ]; then
  copies="clients/python/embedrank/client/service_config.json clients/go/service_config.json"
  if ! git diff --exit-code --stat -- protos/python clients/go/gen $copies; then
    echo "generated code differs from protos/: run protos/generate.sh and commit" >&2
    exit 1
  fi
  untracked=$(git ls-files --others --exclude-standard -- protos/python clients/go/gen $copies)
  if [ -n "$untracked" ]; then
    echo "generated files not committed: $untracked" >&2
    exit 1
  fi
fi
