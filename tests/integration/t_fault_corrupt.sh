# SPDX-License-Identifier: MIT
# Corruption (udprelay.py flips one byte in the protected half of a
# datagram, both directions, modelled on the QUIC interop runner): with
# 30 % of the handshake's (long-header) datagrams corrupted, 20 new
# connections each get 1 KiB byte-identical; with 5 % of the transfer's
# (short-header) datagrams corrupted down (20 % of the client's fewer ones
# up), 1 MiB files arrive byte-identical.
# The relay must have corrupted datagrams in both directions, the server
# logs no error, and no daemon restarts.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
. "$(dirname "$0")/faultlib.sh"
fault_netns "$@"
need_pycurl
need_gtlsclient
fault_setup 2
head -c 1024 /dev/urandom > "$T/htdocs/1k.bin"
head -c 1048576 /dev/urandom > "$T/htdocs/1m.bin"
h3_start || finish

# check_corrupted NAME DIR... - ok if the relay corrupted datagrams in each DIR
check_corrupted() {
    local name=$1 d n; shift
    for d in "$@"; do
        n=$(relay_stat "corrupted_$d")
        [ "$n" -gt 0 ] && ok "$name: the relay corrupted $n datagrams $d" ||
            fail "$name: the relay corrupted nothing $d: $(relay_counters)"
    done
}

# Handshake corruption: gtlsclient (a 30 s handshake timeout; curl's is
# fixed at 10 s), 5 at a time.
relay_start hscorrupt --corrupt 30 --corrupt-phase handshake
t0=$(date +%s%N)
out=$(fault_gtls_conns hscorrupt 20 5 "$(relay_url 1k.bin)" "$T/htdocs/1k.bin" "$RELAY_PORT")
rc=$?
fault_log "$out"
relay_stop
log "hscorrupt: $((($(date +%s%N) - t0) / 1000000)) ms"
[ $rc -eq 0 ] && ok "hscorrupt: 20 new connections through 30 % corrupted handshake datagrams: $(fault_summary "$out")" ||
    fail "hscorrupt: $(fault_summary "$out")"
check_corrupted hscorrupt up down

# Transfer corruption, one direction at a time so that each is proven.
# Up, the client sends only some 40 datagrams in the transfer (ACKs): at 5 %
# none is corrupted one time in eight; at 20 %, one in 7,000.
for dir in down up; do
    pct=5
    [ "$dir" = up ] && pct=20
    relay_start "tcorrupt_$dir" --corrupt "$pct" --corrupt-phase transfer --dir "$dir"
    t0=$(date +%s%N)
    out=$(fault_client --timeout 60 --connect-timeout 15 get --conns 2 --parallel 2 --handshake-retries 1 \
        "$(relay_url 1m.bin)" "$T/htdocs/1m.bin" 2>&1)
    rc=$?
    fault_log "$out"
    relay_stop
    log "tcorrupt_$dir: $((($(date +%s%N) - t0) / 1000000)) ms"
    [ $rc -eq 0 ] && ok "tcorrupt_$dir: 1 MiB files through $pct % corrupted 1-RTT datagrams ($dir): $(fault_summary "$out")" ||
        fail "tcorrupt_$dir: $(fault_summary "$out")"
    check_corrupted "tcorrupt_$dir" "$dir"
done

out=$(fault_client --timeout 60 --connect-timeout 15 get "$(h3_url 1m.bin)" "$T/htdocs/1m.bin" 2>&1)
[ $? -eq 0 ] && ok "afterwards, directly: $(fault_summary "$out")" || fail "afterwards: $out"
grep -E 'quicd/[a-z]+\[?[0-9]*\]?\[[0-9]+\]: (error|fatal|panic)' "$T/quicd.log" &&
    fail "the server logged errors" || ok "the server logged no error"
fault_healthy
finish
