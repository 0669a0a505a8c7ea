#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Every configuration key is documented, and nothing else is: the key table
# is read from the built quicctl ("config -d" prints "key = default" for each
# row of libshared/qd_conf.c) and compared with man/quicd.conf.5 (".It Cm key"
# with its default) and etc/quicd.conf ("key =" or "#key =" with its
# default, and the file must parse).
# Exit codes (automake): 0 pass, 1 fail, 99 hard error.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u

QD_BUILDDIR=${QD_BUILDDIR:-.}
QD_SRCDIR=${QD_SRCDIR:-.}
QUICCTL="$QD_BUILDDIR/daemons/quicctl/quicctl"
MAN="$QD_SRCDIR/man/quicd.conf.5"
SAMPLE="$QD_SRCDIR/etc/quicd.conf"

PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); }
fail() { FAILED=$((FAILED + 1)); echo "FAIL: $*"; }
die() { echo "ERROR: $*"; exit 99; }

[ -x "$QUICCTL" ] || die "$QUICCTL not built (QD_BUILDDIR=$QD_BUILDDIR)"
[ -f "$MAN" ] || die "$MAN is missing (QD_SRCDIR=$QD_SRCDIR)"
[ -f "$SAMPLE" ] || die "$SAMPLE is missing (QD_SRCDIR=$QD_SRCDIR)"

# The key table, in order: KEYS[i] and DEFS[i]. -d does not read the file.
defaults=$("$QUICCTL" -c /dev/null config -d) || die "quicctl config -d failed"
KEYS=()
DEFS=()
declare -A DEF=()
while IFS= read -r line; do
    [[ $line =~ ^([a-z0-9_]+)\ =\ ?(.*)$ ]] || die "unexpected line from quicctl config -d: $line"
    KEYS+=("${BASH_REMATCH[1]}")
    DEFS+=("${BASH_REMATCH[2]}")
    DEF[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
done <<<"$defaults"
[ "${#KEYS[@]}" -gt 0 ] || die "quicctl config -d printed no keys"
echo "checking ${#KEYS[@]} keys against $MAN and $SAMPLE"

# man_entry KEY - the lines of KEY's entry in the KEYS list
man_entry() {
    awk -v k="$1" '
        /^\.It Cm [a-z0-9_]+$/ { on = ($3 == k); next }
        /^\.(Sh|El)/ && on { exit }
        on { print }' "$MAN"
}

for i in "${!KEYS[@]}"; do
    key=${KEYS[$i]}
    def=${DEFS[$i]}

    # The manual: an entry, and the exact default (paths depend on the build).
    if grep -qx "\.It Cm $key" "$MAN"; then
        ok
        entry=$(man_entry "$key")
        if [ -z "$def" ]; then
            if grep -q "Default: empty" <<<"$entry"; then ok; else
                fail "$MAN: $key: the entry does not say \"Default: empty\""
            fi
        elif [[ $def == /* ]]; then
            if grep -q "^Default:$" <<<"$entry"; then ok; else
                fail "$MAN: $key: the entry gives no default"
            fi
        elif grep -qxF -e ".Ql $def ." -e ".Ql $def ," -e ".Ql $def ;" -e ".Ql $def" <<<"$entry"; then
            ok
        else
            fail "$MAN: $key: default \"$def\" not found in its entry (expected \".Ql $def .\")"
        fi
    else
        fail "$MAN: $key: no \".It Cm $key\" entry"
    fi

    # The sample: exactly one "key =" or "#key =" line, and a commented-out
    # line shows the default (paths depend on the build).
    lines=$(grep -E "^#?$key[[:space:]]*=" "$SAMPLE")
    n=$(grep -c . <<<"$lines")
    if [ -z "$lines" ]; then
        fail "$SAMPLE: $key: no \"$key =\" or \"#$key =\" line"
    elif [ "$n" -ne 1 ]; then
        fail "$SAMPLE: $key: $n lines set or show it"
    else
        ok
        if [[ $lines == \#* && $def != /* ]]; then
            shown=$(sed -E 's/^#[a-z0-9_]+[[:space:]]*=[[:space:]]*//; s/[[:space:]]+$//' <<<"$lines")
            if [ "$shown" = "$def" ]; then ok; else
                fail "$SAMPLE: $key: shows \"$shown\" but the default is \"$def\""
            fi
        fi
    fi
done

# Conversely: nothing documented that the program does not know.
while IFS= read -r key; do
    [ -n "$key" ] || continue
    if [ -n "${DEF[$key]+set}" ]; then ok; else
        fail "$MAN: \".It Cm $key\" documents a key the program does not know"
    fi
done < <(sed -n 's/^\.It Cm \([a-z0-9_]*\)$/\1/p' "$MAN")
while IFS= read -r key; do
    [ -n "$key" ] || continue
    if [ -n "${DEF[$key]+set}" ]; then ok; else
        fail "$SAMPLE: \"$key\" is not a configuration key"
    fi
done < <(sed -En 's/^#?([a-z0-9_]+)[[:space:]]*=.*/\1/p' "$SAMPLE")

# The sample as shipped must parse.
if out=$("$QUICCTL" -c "$SAMPLE" check 2>&1); then ok; else
    fail "$SAMPLE does not parse: $(tr '\n' ' ' <<<"$out")"
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
