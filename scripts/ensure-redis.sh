#!/usr/bin/env bash
# ensure-redis.sh prints the path of a redis-server binary, installing Debian's
# redis-server package when none is on PATH (the e2e machines run as root; elsewhere
# it uses sudo when available).
#
# Idempotent. Precedence: $REDIS_BIN (if set and executable) > redis-server on PATH.
# Progress goes to stderr so that `REDIS=$(scripts/ensure-redis.sh)` captures only the path.
set -euo pipefail

if [[ -n "${REDIS_BIN:-}" ]]; then
  if [[ -x "${REDIS_BIN}" ]]; then
    echo "${REDIS_BIN}"
    exit 0
  fi
  echo "ensure-redis: REDIS_BIN=${REDIS_BIN} is not an executable file" >&2
  exit 1
fi

if ! command -v redis-server >/dev/null 2>&1; then
  sudo=""
  if [[ "$(id -u)" != 0 ]]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "ensure-redis: redis-server missing and not root: install Debian's redis-server" >&2
      exit 1
    fi
    sudo="sudo"
  fi
  echo "ensure-redis: installing redis-server with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  ${sudo} apt-get update -qq >&2
  ${sudo} apt-get install -y -qq --no-install-recommends redis-server >&2
  # The package starts a system instance on :6379; the tests start their own on a
  # free port and never use it.
fi

command -v redis-server
