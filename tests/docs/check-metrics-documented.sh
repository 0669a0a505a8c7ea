#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Every metric family of the table (libshared/qd_metrics.def, the one
# place a metric is defined) is documented in quicd(8), METRICS, with its
# type ("Pq counter", "gauge", "histogram"), and every label value of the
# table is named there (an instance label, whose values are numbers, by
# its name); and no family is documented that the table lacks.
# Exit codes (automake): 0 pass, 1 fail, 99 hard error.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u

QD_SRCDIR=${QD_SRCDIR:-.}
DEF="$QD_SRCDIR/libshared/qd_metrics.def"
MAN="$QD_SRCDIR/man/quicd.8"
[ -f "$DEF" ] && [ -f "$MAN" ] || { echo "ERROR: $DEF or $MAN missing"; exit 99; }

FAILED=0
# the families: "NAME TYPE" from QD_METRIC(ID, TYPE, D1, D2, "NAME", ...)
fams=$(tr '\n' ' ' < "$DEF" | grep -o 'QD_METRIC([A-Z0-9_]*, *[A-Z_]*, *[A-Z_]*, *[A-Z_]*, *"[a-z0-9_]*"' |
    sed -E 's/QD_METRIC\([A-Z0-9_]*, *([A-Z_]*), *[A-Z_]*, *[A-Z_]*, *"([a-z0-9_]*)"/\2 \1/')
[ -n "$fams" ] || { echo "ERROR: no families found in $DEF"; exit 99; }
n=0
while read -r name type; do
    n=$((n + 1))
    case $type in
    COUNTER | COUNTER_US) want=counter ;;
    GAUGE | GAUGE_MIN) want=gauge ;;
    HISTOGRAM) want=histogram ;;
    *) echo "FAIL: $name: unknown type $type"; FAILED=$((FAILED + 1)); continue ;;
    esac
    if ! grep -qE "^\.It Sy $name Pq $want" "$MAN"; then
        echo "FAIL: $name ($want) is not documented in man/quicd.8 (.It Sy $name Pq $want...)"
        FAILED=$((FAILED + 1))
    fi
    case $type in COUNTER | COUNTER_US) [[ $name == *_total ]] ;; *) [[ $name != *_total ]] ;; esac ||
        { echo "FAIL: $name: a counter and only a counter ends in _total"; FAILED=$((FAILED + 1)); }
done <<< "$fams"
for name in $(grep -oE '^\.It Sy quicd_[a-z0-9_]+' "$MAN" | awk '{ print $3 }'); do
    grep -q "^$name " <<< "$fams" || { echo "FAIL: man/quicd.8 documents $name, which the table lacks"; FAILED=$((FAILED + 1)); }
done
# every label value (the QD_MDIM lines' strings after the label)
for v in $(tr '\n' ' ' < "$DEF" | grep -o 'QD_MDIM([A-Z_]*, *[0-9]*, *"[a-z]*"[^)]*)' |
    sed -E 's/QD_MDIM\([A-Z_]*, *[0-9]*, *"[a-z]*"//; s/[",)]/ /g'); do
    grep -qF -- "$v" "$MAN" || { echo "FAIL: label value $v is not in man/quicd.8"; FAILED=$((FAILED + 1)); }
done
# every instance label (QD_MDIM_INSTANCE: values 0 to n - 1)
for l in $(tr '\n' ' ' < "$DEF" | grep -o 'QD_MDIM_INSTANCE([A-Z_]*, *[0-9]*, *"[a-z_]*"' |
    sed -E 's/.*"([a-z_]*)"$/\1/'); do
    grep -qE "^Labels: (.*; )?$l \(" "$MAN" || { echo "FAIL: instance label $l is not in man/quicd.8"; FAILED=$((FAILED + 1)); }
done
echo "$n families checked, $FAILED failed"
[ "$FAILED" -eq 0 ]
