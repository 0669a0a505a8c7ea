#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The manuals lint clean: "mandoc -T lint -W warning" prints nothing for
# man/quicd.8, man/quicctl.1 and man/quicd.conf.5.
# Exit codes (automake): 0 pass, 1 fail, 77 skip (no mandoc; under CI=true
# that is 99 instead), 99 hard error.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u

QD_SRCDIR=${QD_SRCDIR:-.}
PAGES="quicd.8 quicctl.1 quicd.conf.5"

PASSED=0
FAILED=0

if ! command -v mandoc >/dev/null 2>&1; then
    if [ "${CI:-}" = true ]; then
        echo "ERROR: mandoc is not installed, and CI=true does not allow skipping (apt-get install mandoc)"
        exit 99
    fi
    echo "SKIP: mandoc is not installed (apt-get install mandoc)"
    exit 77
fi

for page in $PAGES; do
    f="$QD_SRCDIR/man/$page"
    if [ ! -f "$f" ]; then
        FAILED=$((FAILED + 1))
        echo "FAIL: $f is missing"
        continue
    fi
    out=$(mandoc -T lint -W warning "$f" 2>&1)
    rc=$?
    if [ -z "$out" ] && [ "$rc" -eq 0 ]; then
        PASSED=$((PASSED + 1))
        echo "ok: $page"
    else
        FAILED=$((FAILED + 1))
        echo "FAIL: $page (mandoc exit $rc):"
        printf '%s\n' "$out" | sed 's/^/  /'
    fi
done

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
