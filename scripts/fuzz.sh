#!/usr/bin/env bash
# fuzz.sh runs every Go fuzz target of the module, one after the other, for FUZZTIME
# each (default 30s). `make fuzz` calls it; the seed corpora (f.Add and
# <package>/testdata/fuzz/<Target>/) already run as ordinary tests in `make test`.
#
#   scripts/fuzz.sh                 every target
#   scripts/fuzz.sh ./authz         the targets of some packages
#   FUZZ_SEEDS=20 scripts/fuzz.sh   also copy up to 20 of the inputs the fuzzer found
#                                   interesting into testdata/fuzz (to grow the committed
#                                   corpora; review them before committing)
#
# A failing input is written to testdata/fuzz/<Target>/ by go test itself and the
# script stops with the failure.
set -euo pipefail

FUZZTIME="${FUZZTIME:-30s}"
FUZZ_SEEDS="${FUZZ_SEEDS:-0}"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"

if [[ $# -gt 0 ]]; then
  dirs=("$@")
else
  mapfile -t dirs < <(git ls-files --cached --others --exclude-standard '*_test.go' |
    xargs grep -l '^func Fuzz' | xargs -n1 dirname | sort -u | sed 's|^|./|')
fi

cache="$(go env GOCACHE)/fuzz"
module="$(go list -m)"
total=0
for dir in "${dirs[@]}"; do
  pkg="$(go list "${dir}")"
  mapfile -t targets < <(grep -ho '^func Fuzz[A-Za-z0-9_]*' "${dir}"/*_test.go | sed 's/^func //' | sort -u)
  for target in "${targets[@]}"; do
    echo "== ${pkg} ${target} (${FUZZTIME})"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "${FUZZTIME}" "${dir}"
    total=$((total + 1))
    if [[ "${FUZZ_SEEDS}" -gt 0 && -d "${cache}/${pkg}/${target}" ]]; then
      dest="${dir}/testdata/fuzz/${target}"
      mkdir -p "${dest}"
      # The smallest new inputs first: they are the easiest to read in a review.
      find "${cache}/${pkg}/${target}" -type f -size -4k -printf '%s %p\n' | sort -n |
        head -n "${FUZZ_SEEDS}" | cut -d' ' -f2- | xargs -r cp -n -t "${dest}"
    fi
  done
done
echo "fuzz: ${total} targets in ${module}, ${FUZZTIME} each: no failure"
