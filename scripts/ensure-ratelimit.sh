#!/usr/bin/env bash
# ensure-ratelimit.sh prints the path of the envoyproxy/ratelimit service binary,
# building the pinned commit with `go install` into <repo>/.tools/bin when needed.
#
# Idempotent: a second run only checks the version stamp and prints the path.
# Precedence: $RATELIMIT_BIN (if set and executable) > <repo>/.tools/bin/ratelimit.
# Progress goes to stderr so that `RL=$(scripts/ensure-ratelimit.sh)` captures only the path.
#
# It is a tool, not a dependency: it never touches our go.mod. Its own go.mod may ask
# for a newer go directive than ours; GOTOOLCHAIN=local builds it with the installed Go
# (1.26), which satisfies it.
set -euo pipefail

# envoyproxy/ratelimit publishes no release tags after v1.4.0; pin a main-branch commit
# as a pseudo-version (3fb70258, 2026-01-22). Keep e2e/docker-compose.yaml's image in
# mind when bumping.
RATELIMIT_VERSION=v1.4.1-0.20260122083618-3fb702589d36

if [[ -n "${RATELIMIT_BIN:-}" ]]; then
  if [[ -x "${RATELIMIT_BIN}" ]]; then
    echo "${RATELIMIT_BIN}"
    exit 0
  fi
  echo "ensure-ratelimit: RATELIMIT_BIN=${RATELIMIT_BIN} is not an executable file" >&2
  exit 1
fi

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin_dir="${repo_root}/.tools/bin"
bin="${bin_dir}/ratelimit"
stamp="${bin_dir}/ratelimit.version"

if [[ -x "${bin}" && -f "${stamp}" && "$(cat "${stamp}")" == "${RATELIMIT_VERSION}" ]]; then
  echo "${bin}"
  exit 0
fi

echo "ensure-ratelimit: go install github.com/envoyproxy/ratelimit/src/service_cmd@${RATELIMIT_VERSION}" >&2
mkdir -p "${bin_dir}"
tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT
# Outside our module (cd to a temp dir) so that our go.mod and GOFLAGS play no part;
# host binary even if the caller's environment targets wasm.
(
  cd "${tmp}"
  GOBIN="${tmp}" GOOS= GOARCH= CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
    go install "github.com/envoyproxy/ratelimit/src/service_cmd@${RATELIMIT_VERSION}" >&2
)
mv "${tmp}/service_cmd" "${bin}"
echo "${RATELIMIT_VERSION}" > "${stamp}"
echo "${bin}"
