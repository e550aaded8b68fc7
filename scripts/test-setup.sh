#!/usr/bin/env bash
# Run by `npm test` before the tests: makes sure what the tests need is here,
# so the README's one test command works on a fresh machine of the project's
# kind (Node, Go, apt). Installs nothing that is already present.
#  - redis-server: tests start their own on loopback ports.
#  - helm and the upstream CRDs (chart tests), Envoy's API descriptors
#    (go-control-plane, ext_proc proto test), kube-apiserver and etcd (the
#    real-API-server tests): built/fetched through Go by .ci/tools.sh into a
#    cache, reused on later runs (the first build of kube-apiserver takes
#    about 10 minutes on 2 cores).
# The tool paths are written to .tmp/test-tools.env, which vitest.config.ts
# loads (npm runs pretest and test as separate processes).
set -uo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test-setup: installing redis-server (apt-get)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    # Tests start their own servers; the distribution's service is not needed.
    command -v service >/dev/null 2>&1 && service redis-server stop >/dev/null 2>&1
  else
    echo "test-setup: redis-server is missing; install it (e.g. apt-get install -y redis-server)" >&2
  fi
fi

if [ -z "${HELM_BIN:-}" ] || [ -z "${GIE_CRD_DIR:-}" ] || [ -z "${GATEWAY_API_CRD_DIR:-}" ] ||
  [ -z "${ENVOY_API_DIR:-}" ] || [ -z "${KUBE_APISERVER_BIN:-}" ] || [ -z "${ETCD_BIN:-}" ] ||
  [ -z "${ISTIO_CRD_FILE:-}" ] || [ -z "${ENVOY_VALIDATE_BIN:-}" ] ||
  [ -z "${EXTPROC_GO_CLIENT_BIN:-}" ]; then
  # shellcheck source=/dev/null
  source .ci/tools.sh
fi

mkdir -p .tmp
{
  echo "HELM_BIN=${HELM_BIN:-}"
  echo "GIE_CRD_DIR=${GIE_CRD_DIR:-}"
  echo "GATEWAY_API_CRD_DIR=${GATEWAY_API_CRD_DIR:-}"
  echo "ENVOY_API_DIR=${ENVOY_API_DIR:-}"
  echo "KUBE_APISERVER_BIN=${KUBE_APISERVER_BIN:-}"
  echo "ETCD_BIN=${ETCD_BIN:-}"
  echo "ISTIO_CRD_FILE=${ISTIO_CRD_FILE:-}"
  echo "ENVOY_VALIDATE_BIN=${ENVOY_VALIDATE_BIN:-}"
  echo "EXTPROC_GO_CLIENT_BIN=${EXTPROC_GO_CLIENT_BIN:-}"
} >.tmp/test-tools.env
exit 0
