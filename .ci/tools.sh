#!/usr/bin/env bash
# Sourced by .ci/run: builds the Go tools the chart tests need (helm) into a
# cache directory and reuses them on later runs. Exports HELM_BIN.
# Helm is built from source with the Go toolchain because CI reaches the Go
# module proxy but cannot download release binaries.

HERMES_HELM_VERSION="${HERMES_HELM_VERSION:-v3.21.4}"
# Kubernetes version helm assumes offline (helm template/lint); helm's own
# Makefile sets it from its k8s.io modules (v0.36 for this helm).
HERMES_HELM_K8S_MINOR="${HERMES_HELM_K8S_MINOR:-36}"
HERMES_TOOLS_CACHE="${HERMES_TOOLS_CACHE:-$HOME/.cache/hermes-router-tools}"

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

# A failed build must not stop CI here: the chart tests then fail with a
# message naming HELM_BIN, and every other test still runs.
if hermes_install_helm; then
  echo "tools.sh: HELM_BIN=$HELM_BIN ($("$HELM_BIN" version --short 2>/dev/null))" >&2
else
  echo "tools.sh: WARNING: helm $HERMES_HELM_VERSION could not be built; chart tests will fail" >&2
fi
