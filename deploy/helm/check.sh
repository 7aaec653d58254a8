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
for values in "" "$chart/ci/cuda-values.yaml" "$chart/ci/tls-export-values.yaml"; do
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
echo "chart OK"
