# SPDX-License-Identifier: MIT
# A TCP handshake that completes after a reload switched the steering is
# still served. A client's SYN reaches the only worker of generation 1 and
# nftables drops the client's next packets (its ACK and ClientHello), so
# the connection waits half-open in that worker's listen socket; then a
# reload changes workers and generation 2 takes the new connections, while
# a long download keeps the old worker draining. Once the rule is gone the
# client's retransmission completes the handshake into the old worker's
# accept queue, where no other worker would ever take it: the draining
# worker accepts it and answers (before, it had stopped accepting and the
# client waited until its timeout).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
. "$(dirname "$0")/faultlib.sh"
fault_netns "$@"
need_pycurl
CONFS=("drain_timeout = 60s")
fault_setup 1 "${CONFS[@]}"
# 30 MB: more than the kernel's socket buffers on both sides hold (up to
# ~10 MB on loopback), so the response is still being written, and the
# worker still draining, when the late handshake completes; with 6 MB the
# whole answer sat in the buffers after 2 s, the worker exited 1 s later
# (its accept grace) and a late handshake slowed by a loaded machine found
# no one accepting
head -c 30000000 /dev/urandom > "$T/htdocs/big.bin"
printf 'small file %s\n' "$(head -c 300 /dev/urandom | base64 -w0)" > "$T/htdocs/small.txt"
h3_start || finish
fault_tables

# curl_tcp ARGS... - Debian's curl over TLS/TCP (HTTP/1.1), trusting the test certificate
curl_tcp() {
    curl --silent --show-error --http1.1 --cacert "$T/cert.pem" \
        --resolve "localhost:$PORT:127.0.0.1" "$@"
}

# a long download keeps worker[0] draining after the reload
curl_tcp --limit-rate 1M --max-time 120 -o "$T/big.out" "https://localhost:$PORT/big.bin" \
    2> "$T/big.err" &
BIG=$!
BG_PIDS="$BG_PIDS $BIG"
has_download() { [ -s "$T/big.out" ]; }
wait_until 10 has_download && ok "a long download runs on worker[0]" || fail "the download did not start"

# the late client: its SYN passes, the rest of what it sends is dropped
new_port LPORT   # the late client's own port, dropped by the rule below
nft add rule $FAULT_TABLE input tcp dport "$PORT" tcp sport "$LPORT" 'tcp flags & syn == 0' \
    counter drop comment '"late"' || die "nft add rule"
# (its retransmissions back off while the rule holds, longer on a loaded
# machine: it may take a while after the rule is gone)
curl_tcp --local-port "$LPORT" --max-time 90 -o "$T/late.out" -w '%{http_code}\n' \
    "https://localhost:$PORT/small.txt" > "$T/late.code" 2> "$T/late.err" &
LATE=$!
BG_PIDS="$BG_PIDS $LATE"
half_open() { ss -Htn state syn-recv "( sport = :$PORT and dport = :$LPORT )" | grep -q .; }
wait_until 5 half_open && ok "the late client's connection waits half-open on worker[0]" ||
    fail "no half-open connection: $(ss -Htan "( sport = :$PORT )")"

out=$(h3_conf 2 "${CONFS[@]}"; quicctl reload 2>&1)
echo "$out" | grep -q "generation 2 (2 workers) serves new connections" &&
    ok "reload: generation 2 takes the new connections" || fail "reload: $out"
stopping() { grep -q "worker\[0\]\[[0-9]*\]: stopping:" "$T/quicd.log"; }
wait_until 5 stopping && ok "worker[0] drains" || fail "worker[0] is not stopping"
sleep 0.5   # the draining worker goes on a while before the handshake completes: the case tested
fault_clear late

wait "$LATE"
rc=$?
code=$(cat "$T/late.code")
[ $rc -eq 0 ] && [ "$code" = 200 ] && cmp -s "$T/late.out" "$T/htdocs/small.txt" &&
    ok "the late connection completed on the draining worker and got its answer" ||
    fail "late client: exit $rc, status $code: $(cat "$T/late.err")"
wait "$BIG"
rc=$?
[ $rc -eq 0 ] && cmp -s "$T/big.out" "$T/htdocs/big.bin" &&
    ok "the long download completed byte-identical" || fail "download: exit $rc: $(cat "$T/big.err")"
drained() { grep -q "generation 1 has drained" "$T/quicd.log"; }
wait_until 10 drained && ok "generation 1 drained" || fail "generation 1 did not drain"
finish
