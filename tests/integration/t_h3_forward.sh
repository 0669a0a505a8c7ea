# SPDX-License-Identifier: MIT
# Mis-steered packets are forwarded, not reset: with the listener's CID
# steering program taken off its socket groups (as root, through
# pidfd_getfd), the kernel hashes packets by 4-tuple, so a connection that
# migrates to a new local port lands on a random worker. Every migrated
# download must still complete byte-identical, and the listener must report
# that it relayed packets to the owning worker.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_gtlsclient
[ "$(id -u)" = 0 ] || { log "SKIP: needs root to reach the listener's sockets"; exit 77; }
h3_setup 2
D="$T/htdocs"
head -c 1048576 /dev/urandom > "$D/1m.bin"
h3_start || finish

LPID=$(proc_field listener - pid)
out=$("$H3_PYTHON" "$QD_SRCDIR/tests/integration/detach_steering.py" "$LPID" 2>&1) &&
    ok "$out" || { fail "cannot detach the steering program: $out"; finish; }

# Migrations: each lands on the wrong worker with probability 1/2, so at
# least 12, and more (up to 40) until the listener says it relayed some:
# 12 steered right by chance happen once in 4096 runs.
relayed() { grep -q "relayed [0-9]* packets to the worker that owns" "$T/quicd.log"; }
good=0 n=0
while [ $n -lt 12 ] || { [ $n -lt 40 ] && ! relayed; }; do
    n=$((n + 1)); i=$n
    L="$T/m$i.log"; DL="$T/m$i.dl"; mkdir -p "$DL"
    gtls 30 --change-local-addr=100ms --delay-stream=300ms --download="$DL" \
        127.0.0.1 "$PORT" "$(h3_url 1m.bin)" > "$L"
    if [ "$(gtls_status_count "$L" 200)" = 1 ] && cmp -s "$D/1m.bin" "$DL/1m.bin"; then
        good=$((good + 1))
    else
        fail "migration $i: $(grep -vE '^I[0-9]|^\[' "$L" | tail -n 3 | tr '\n' ' ')"
    fi
done
[ "$good" = "$n" ] && ok "$n migrated downloads completed byte-identical"
# (the listener's line reaches quicd.log a moment after the relay)
wait_until 2 relayed &&
    ok "the listener relayed mis-steered packets: $(grep -o 'relayed [0-9]* packets' "$T/quicd.log" | tail -n1)" ||
    fail "no packet was relayed in $n migrations"
grep -q "stateless" "$T/quicd.log" && fail "a stateless reset was logged" || true
finish
