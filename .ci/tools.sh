#!/usr/bin/env bash
# Sourced by .ci/run: builds the Go tools the chart tests need (helm) into a
# cache directory and reuses them on later runs. Exports HELM_BIN.
# Helm is built from source with the Go toolchain because CI reaches the Go
# module proxy but cannot download release binaries.
# Also fetches the upstream CRDs the rendered objects are validated against
# (Go modules whose zips carry the CRD YAMLs) and exports GIE_CRD_DIR and
# GATEWAY_API_CRD_DIR, pointing into the Go module cache.
# And Envoy's API as go-control-plane's generated code, whose .pb.go files
# embed each .proto's FileDescriptorProto: ENVOY_API_DIR is that module's
# directory (test/unit/extproc/upstream-descriptors.test.ts checks proto/).

HERMES_HELM_VERSION="${HERMES_HELM_VERSION:-v3.21.4}"
# Kubernetes version helm assumes offline (helm template/lint); helm's own
# Makefile sets it from its k8s.io modules (v0.36 for this helm).
HERMES_HELM_K8S_MINOR="${HERMES_HELM_K8S_MINOR:-36}"
HERMES_TOOLS_CACHE="${HERMES_TOOLS_CACHE:-$HOME/.cache/hermes-router-tools}"
# v1.4.0 is the last release shipping both InferencePool CRDs: v1
# (inference.networking.k8s.io, identical to v1.5.0's) and the legacy v1alpha2
# (inference.networking.x-k8s.io) the chart can still render.
HERMES_GIE_VERSION="${HERMES_GIE_VERSION:-v1.4.0}"
HERMES_GATEWAY_API_VERSION="${HERMES_GATEWAY_API_VERSION:-v1.4.1}"
# github.com/envoyproxy/go-control-plane/envoy (generated from data-plane-api).
HERMES_ENVOY_API_VERSION="${HERMES_ENVOY_API_VERSION:-v1.40.0}"

hermes_install_helm() {
  local dir="$HERMES_TOOLS_CACHE/helm-$HERMES_HELM_VERSION"
  # Reuse only a binary that reports the pinned version (built with our ldflags).
  if [ -x "$dir/helm" ] && [ "$("$dir/helm" version --template '{{.Version}}' 2>/dev/null)" = "$HERMES_HELM_VERSION" ]; then
    export HELM_BIN="$dir/helm"
    return 0
  fi
  if ! command -v go >/dev/null 2>&1; then
    echo "tools.sh: go not found; cannot build helm $HERMES_HELM_VERSION" >&2
    return 1
  fi
  mkdir -p "$dir"
  echo "tools.sh: building helm $HERMES_HELM_VERSION into $dir (takes a few minutes)" >&2
  local ldflags="-w -s -X helm.sh/helm/v3/internal/version.version=$HERMES_HELM_VERSION"
  ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$HERMES_HELM_K8S_MINOR"
  done
  # Build outside the repo so go.mod lookups never touch the project tree.
  (cd "$dir" && GOFLAGS=-mod=mod GOBIN="$dir" CGO_ENABLED=0 \
    go install -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HERMES_HELM_VERSION") || return 1
  export HELM_BIN="$dir/helm"
}

# Prints the module-cache directory of MODULE@VERSION, downloading it once;
# later runs find it in the Go module cache and need no network.
hermes_module_dir() {
  local out
  # Outside the repo so the project's (absent) go.mod is never consulted.
  out="$(cd "$HERMES_TOOLS_CACHE" && GOFLAGS=-mod=mod go mod download -json "$1")" || {
    echo "tools.sh: go mod download $1 failed: $out" >&2
    return 1
  }
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$out"
}

hermes_fetch_crds() {
  if ! command -v go >/dev/null 2>&1; then
    echo "tools.sh: go not found; cannot fetch the CRDs" >&2
    return 1
  fi
  mkdir -p "$HERMES_TOOLS_CACHE"
  local gie gw
  gie="$(hermes_module_dir "sigs.k8s.io/gateway-api-inference-extension@$HERMES_GIE_VERSION")" || return 1
  gw="$(hermes_module_dir "sigs.k8s.io/gateway-api@$HERMES_GATEWAY_API_VERSION")" || return 1
  # Export only directories that hold the CRDs the tests read.
  if [ ! -f "$gie/config/crd/bases/inference.networking.k8s.io_inferencepools.yaml" ] ||
    [ ! -f "$gw/config/crd/standard/gateway.networking.k8s.io_httproutes.yaml" ]; then
    echo "tools.sh: CRD files missing under $gie or $gw" >&2
    return 1
  fi
  export GIE_CRD_DIR="$gie/config/crd/bases"
  export GATEWAY_API_CRD_DIR="$gw/config/crd/standard"
}

hermes_fetch_envoy_api() {
  if ! command -v go >/dev/null 2>&1; then
    echo "tools.sh: go not found; cannot fetch go-control-plane" >&2
    return 1
  fi
  mkdir -p "$HERMES_TOOLS_CACHE"
  local dir
  dir="$(hermes_module_dir "github.com/envoyproxy/go-control-plane/envoy@$HERMES_ENVOY_API_VERSION")" || return 1
  if [ ! -f "$dir/service/ext_proc/v3/external_processor.pb.go" ]; then
    echo "tools.sh: service/ext_proc/v3/external_processor.pb.go missing under $dir" >&2
    return 1
  fi
  export ENVOY_API_DIR="$dir"
}

# A failed build must not stop CI here: the chart tests then fail with a
# message naming HELM_BIN, and every other test still runs.
if hermes_install_helm; then
  echo "tools.sh: HELM_BIN=$HELM_BIN ($("$HELM_BIN" version --short 2>/dev/null))" >&2
else
  echo "tools.sh: WARNING: helm $HERMES_HELM_VERSION could not be built; chart tests will fail" >&2
fi
# Same policy for the CRDs: test/charts/crds.test.ts names the missing variable.
if hermes_fetch_crds; then
  echo "tools.sh: GIE_CRD_DIR=$GIE_CRD_DIR GATEWAY_API_CRD_DIR=$GATEWAY_API_CRD_DIR" >&2
else
  echo "tools.sh: WARNING: CRDs could not be fetched; CRD validation tests will fail" >&2
fi
# And for Envoy's API: the descriptor test names ENVOY_API_DIR when it is missing.
if hermes_fetch_envoy_api; then
  echo "tools.sh: ENVOY_API_DIR=$ENVOY_API_DIR" >&2
else
  echo "tools.sh: WARNING: go-control-plane could not be fetched; the ext_proc descriptor test will fail" >&2
fi
