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

# Istio's CRDs (DestinationRule, which the chart renders for the istio class),
# from istio.io/api's kubernetes/customresourcedefinitions.gen.yaml.
HERMES_ISTIO_API_VERSION="${HERMES_ISTIO_API_VERSION:-v1.28.0}"

hermes_fetch_istio_crds() {
  command -v go >/dev/null 2>&1 || return 1
  mkdir -p "$HERMES_TOOLS_CACHE"
  local dir
  dir="$(hermes_module_dir "istio.io/api@$HERMES_ISTIO_API_VERSION")" || return 1
  [ -f "$dir/kubernetes/customresourcedefinitions.gen.yaml" ] || return 1
  export ISTIO_CRD_FILE="$dir/kubernetes/customresourcedefinitions.gen.yaml"
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

# A real kube-apiserver and etcd for the discovery and chart tests, built from
# the Go module proxy: k8s.io/kubernetes itself replaces its staging modules
# with ./staging paths, which a dependant cannot use, so a small build module
# replaces each of them with the published vX.Y.Z module of the same release.
HERMES_KUBE_VERSION="${HERMES_KUBE_VERSION:-v1.34.3}"
# The etcd release k8s.io/kubernetes $HERMES_KUBE_VERSION itself requires.
HERMES_ETCD_VERSION="${HERMES_ETCD_VERSION:-v3.6.4}"

# Writes a go.mod for building MAIN_MODULE@VERSION's commands, with REPLACES.
hermes_write_build_module() {
  local dir="$1" require="$2" replaces="$3"
  mkdir -p "$dir"
  {
    echo "module hermes-router.local/tools-build"
    echo
    echo "go 1.24.0"
    echo
    echo "require $require"
    if [ -n "$replaces" ]; then
      echo
      echo "replace ("
      echo "$replaces"
      echo ")"
    fi
  } >"$dir/go.mod"
}

hermes_install_kube_apiserver() {
  local dir="$HERMES_TOOLS_CACHE/kube-$HERMES_KUBE_VERSION"
  if [ -x "$dir/kube-apiserver" ] &&
    [ "$("$dir/kube-apiserver" --version 2>/dev/null)" = "Kubernetes $HERMES_KUBE_VERSION" ]; then
    export KUBE_APISERVER_BIN="$dir/kube-apiserver"
    return 0
  fi
  if ! command -v go >/dev/null 2>&1; then
    echo "tools.sh: go not found; cannot build kube-apiserver $HERMES_KUBE_VERSION" >&2
    return 1
  fi
  mkdir -p "$dir/build"
  local modfile staging replaces
  modfile="$(cd "$HERMES_TOOLS_CACHE" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$HERMES_KUBE_VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')" || return 1
  # v1.34.3 -> v0.34.3: the staging modules' tag of the same release.
  staging="v0.${HERMES_KUBE_VERSION#v1.}"
  replaces="$(sed -n "s#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 $staging#p" "$modfile")"
  if [ -z "$replaces" ]; then
    echo "tools.sh: no staging replacements found in $modfile" >&2
    return 1
  fi
  hermes_write_build_module "$dir/build" "k8s.io/kubernetes $HERMES_KUBE_VERSION" "$replaces"
  echo "tools.sh: building kube-apiserver $HERMES_KUBE_VERSION into $dir (long: ~10 min on 2 cores)" >&2
  local pkg=k8s.io/component-base/version ldflags="-w -s"
  ldflags+=" -X $pkg.gitVersion=$HERMES_KUBE_VERSION -X $pkg.gitTreeState=clean"
  ldflags+=" -X $pkg.gitMajor=1 -X $pkg.gitMinor=$(cut -d. -f2 <<<"$HERMES_KUBE_VERSION")"
  local start=$SECONDS
  (cd "$dir/build" && GOFLAGS=-mod=mod CGO_ENABLED=0 go get "k8s.io/kubernetes/cmd/kube-apiserver@$HERMES_KUBE_VERSION" &&
    GOFLAGS=-mod=mod CGO_ENABLED=0 go build -ldflags "$ldflags" -o "$dir/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver) || return 1
  mv "$dir/kube-apiserver.tmp" "$dir/kube-apiserver"
  echo "tools.sh: kube-apiserver built in $((SECONDS - start)) s" >&2
  export KUBE_APISERVER_BIN="$dir/kube-apiserver"
}

hermes_install_etcd() {
  local dir="$HERMES_TOOLS_CACHE/etcd-$HERMES_ETCD_VERSION"
  if [ -x "$dir/etcd" ] && "$dir/etcd" --version 2>/dev/null | grep -qx "etcd Version: ${HERMES_ETCD_VERSION#v}"; then
    export ETCD_BIN="$dir/etcd"
    return 0
  fi
  if ! command -v go >/dev/null 2>&1; then
    echo "tools.sh: go not found; cannot build etcd $HERMES_ETCD_VERSION" >&2
    return 1
  fi
  # server/v3's own go.mod replaces its sibling modules with ../ paths.
  local replaces="" m
  for m in go.etcd.io/etcd/api/v3 go.etcd.io/etcd/client/pkg/v3 go.etcd.io/etcd/client/v3 go.etcd.io/etcd/pkg/v3; do
    replaces+="	$m => $m $HERMES_ETCD_VERSION"$'\n'
  done
  hermes_write_build_module "$dir/build" "go.etcd.io/etcd/server/v3 $HERMES_ETCD_VERSION" "${replaces%$'\n'}"
  echo "tools.sh: building etcd $HERMES_ETCD_VERSION into $dir" >&2
  local start=$SECONDS
  (cd "$dir/build" && GOFLAGS=-mod=mod CGO_ENABLED=0 go get "go.etcd.io/etcd/server/v3@$HERMES_ETCD_VERSION" &&
    GOFLAGS=-mod=mod CGO_ENABLED=0 go build -ldflags "-w -s" -o "$dir/etcd.tmp" go.etcd.io/etcd/server/v3) || return 1
  mv "$dir/etcd.tmp" "$dir/etcd"
  echo "tools.sh: etcd built in $((SECONDS - start)) s" >&2
  export ETCD_BIN="$dir/etcd"
}

# test/envoy-validate: Envoy bootstraps parsed with go-control-plane's types
# and their validation rules (test/unit/envoy/bootstraps.test.ts). Built from
# the repo's own module; Go's build cache makes later builds take a second.
hermes_build_envoy_validate() {
  command -v go >/dev/null 2>&1 || return 1
  local src
  src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../test/envoy-validate" && pwd)" || return 1
  mkdir -p "$HERMES_TOOLS_CACHE"
  (cd "$src" && CGO_ENABLED=0 go build -o "$HERMES_TOOLS_CACHE/envoy-validate" .) || return 1
  export ENVOY_VALIDATE_BIN="$HERMES_TOOLS_CACHE/envoy-validate"
}

# test/extproc-go-client: one ext_proc exchange with grpc-go and Envoy's
# generated types (test/integration/epp/extproc-go-client.test.ts), a client
# sharing no code with the EPP, run against both of its server transports.
hermes_build_extproc_go_client() {
  command -v go >/dev/null 2>&1 || return 1
  local src
  src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../test/extproc-go-client" && pwd)" || return 1
  mkdir -p "$HERMES_TOOLS_CACHE"
  (cd "$src" && CGO_ENABLED=0 go build -o "$HERMES_TOOLS_CACHE/extproc-go-client" .) || return 1
  export EXTPROC_GO_CLIENT_BIN="$HERMES_TOOLS_CACHE/extproc-go-client"
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
# Without them the real-API-server tests fail with a message naming the variable.
if hermes_install_etcd && hermes_install_kube_apiserver; then
  echo "tools.sh: KUBE_APISERVER_BIN=$KUBE_APISERVER_BIN ETCD_BIN=$ETCD_BIN" >&2
else
  echo "tools.sh: WARNING: kube-apiserver/etcd could not be built; the real-API-server tests will fail" >&2
fi
if hermes_fetch_istio_crds; then
  echo "tools.sh: ISTIO_CRD_FILE=$ISTIO_CRD_FILE" >&2
else
  echo "tools.sh: WARNING: istio.io/api could not be fetched; the server-side dry run of DestinationRules will fail" >&2
fi
if hermes_build_envoy_validate; then
  echo "tools.sh: ENVOY_VALIDATE_BIN=$ENVOY_VALIDATE_BIN" >&2
else
  echo "tools.sh: WARNING: test/envoy-validate could not be built; the Envoy bootstrap test will fail" >&2
fi
if hermes_build_extproc_go_client; then
  echo "tools.sh: EXTPROC_GO_CLIENT_BIN=$EXTPROC_GO_CLIENT_BIN" >&2
else
  echo "tools.sh: WARNING: test/extproc-go-client could not be built; the grpc-go ext_proc test will fail" >&2
fi
