#!/usr/bin/env bash
# Render the chart with each value set and validate every manifest offline (`make chart-check`,
# part of `make test` and so of CI). helm is built with `go install` at a pinned version into
# .tools/ (once per clone; seconds with Go's caches warm); manifests are checked by kubecheck
# (deploy/helm/kubecheck: strict decoding into k8s.io/api types), since kubeconform fetches its
# JSON schemas from GitHub at run time.
set -euo pipefail
cd "$(dirname "$0")/../.."
HELM=${HELM:-.tools/bin/helm}
KUBE_VERSION=${KUBE_VERSION:-1.31.0}
chart=deploy/helm/embedrank
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

(cd deploy/helm/kubecheck && go test ./... && go build -o "$out/kubecheck" .)
"$HELM" lint --strict "$chart" --kube-version "$KUBE_VERSION"
for values in "" "$chart/ci/cuda-values.yaml" "$chart/ci/tls-export-values.yaml" "$chart/ci/pull-values.yaml"; do
  echo "== helm template ${values:-(defaults)}"
  "$HELM" template check "$chart" --kube-version "$KUBE_VERSION" --namespace embedrank ${values:+-f "$values"} >"$out/rendered.yaml"
  "$out/kubecheck" <"$out/rendered.yaml"
  # Every timeout and cap of docs/deploy.md's table is set from a value.
  for env in HEAD_TIMEOUT_S BODY_TIMEOUT_S IDLE_TIMEOUT_S MAX_CONNECTIONS GRPC_MAX_CONCURRENT_STREAMS \
             GRPC_MIN_PING_INTERVAL_S SHUTDOWN_GRACE_S MAX_CONNECTION_AGE_S MAX_INFLIGHT_INPUTS; do
    grep -q "name: EMBEDRANK_$env\$" "$out/rendered.yaml" || { echo "EMBEDRANK_$env not rendered" >&2; exit 1; }
  done
done
# Mistakes in values are refused at render time with a message naming the value.
if "$HELM" template check "$chart" --kube-version "$KUBE_VERSION" --set tls.enabled=true 2>"$out/err" >/dev/null; then
  echo "tls.enabled without tls.secretName rendered" >&2; exit 1
fi
grep -q "tls.serverName\|tls.secretName" "$out/err"
# models.export: one init container `embedrank pull` writing into the shared claim (replicas share one
# export), each entry as one --model NAME=SOURCE[@REVISION][:OPTION=VALUE,...].
"$HELM" template check "$chart" --kube-version "$KUBE_VERSION" -f "$chart/ci/pull-values.yaml" >"$out/pull.yaml"
grep -q -- '- "minilm=sentence-transformers/all-MiniLM-L6-v2:quantize=avx512-vnni"' "$out/pull.yaml"
grep -q -- '- "bge-reranker=BAAI/bge-reranker-base@2cfc18c9415c912f9d8155881c133215df768a70:kind=rerank"' "$out/pull.yaml"
grep -q 'claimName: embedrank-models-rwx' "$out/pull.yaml"
[ "$(grep -c -- '- pull$' "$out/pull.yaml")" = 1 ]
if "$HELM" template check "$chart" --kube-version "$KUBE_VERSION" --set models.export.enabled=true 2>"$out/err" >/dev/null; then
  echo "models.export.enabled without models rendered" >&2; exit 1
fi
grep -q "models.export.models" "$out/err"
echo "chart OK"
