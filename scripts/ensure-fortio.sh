#!/usr/bin/env bash
# ensure-fortio.sh prints the path of the fortio load generator, installing the pinned
# release with `go install` into <repo>/.tools/bin when needed. The soak test drives
# Envoy with it (`make soak`, and the short soak in `make test`).
#
# Idempotent: a second run only checks the version stamp and prints the path.
# Precedence: $FORTIO_BIN (if set and executable) > <repo>/.tools/bin/fortio.
# Progress goes to stderr so that `F=$(scripts/ensure-fortio.sh)` captures only the path.
#
# It is a tool, not a dependency: it is built outside our module and never touches our
# go.mod.
set -euo pipefail

# v1.68.2 (2025-04-02): the last release without the grol.io dependency, which the
# module proxy this project builds from does not serve.
FORTIO_VERSION=v1.68.2

if [[ -n "${FORTIO_BIN:-}" ]]; then
  if [[ -x "${FORTIO_BIN}" ]]; then
    echo "${FORTIO_BIN}"
    exit 0
  fi
  echo "ensure-fortio: FORTIO_BIN=${FORTIO_BIN} is not an executable file" >&2
  exit 1
fi

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin_dir="${repo_root}/.tools/bin"
bin="${bin_dir}/fortio"
stamp="${bin_dir}/fortio.version"

if [[ -x "${bin}" && -f "${stamp}" && "$(cat "${stamp}")" == "${FORTIO_VERSION}" ]]; then
  echo "${bin}"
  exit 0
fi

echo "ensure-fortio: go install fortio.org/fortio@${FORTIO_VERSION}" >&2
mkdir -p "${bin_dir}"
# Outside our module (cd to a temp dir) so that our go.mod and GOFLAGS play no part;
# a host binary even if the caller's environment targets wasm.
tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT
(
  cd "${tmp}"
  GOBIN="${bin_dir}" GOOS= GOARCH= CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
    go install "fortio.org/fortio@${FORTIO_VERSION}" >&2
)
echo "${FORTIO_VERSION}" > "${stamp}"
echo "${bin}"
