# SPDX-License-Identifier: MIT
# Request heads stay apart under loss: 40 concurrent HTTP/3 connections
# (curl, one request each) ask for /1k.bin with "Range: bytes=i-i"
# (i = 0..39) first, then "x-client: i" and about 2 KB of x-pad-N fields
# distinct per request, so every header block spans several packets; with
# nftables dropping 20 % of the client's datagrams (client to server) a
# block arrives in pieces while other connections' blocks arrive. Every
# answer must be 206 with content-range "bytes i-i/1024" and exactly byte
# i (the first 256 bytes of the file all differ): 10 rounds of 40, 0
# mixed (another request's byte, or the whole file because the Range
# field went missing) and 0 failed. A round without loss comes first; the
# loss rule must have dropped datagrams in every round. A connection whose
# handshake did not complete (no request sent: curl gives a handshake
# 10 s) is tried again, at most twice, and counted. The clients run in 8
# processes of 5: one process doing 40 TLS handshakes in turn delayed
# its answers by up to a second, which inflated its RTT estimate and its
# retransmission timeouts (to seconds) so far that a client Finished lost
# three times could outlast the server's handshake timeout, which then
# closed a connection whose request the client had long sent.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
. "$(dirname "$0")/faultlib.sh"
fault_netns "$@"
need_pycurl
ROUNDS=${QD_FAULT_HEADER_ROUNDS:-10}
CLIENTS=40
fault_setup 2
# 1024 bytes whose first 256 are a permutation of 0..255
"$H3_PYTHON" -c 'import os, random, sys
b = list(range(256)); random.shuffle(b)
sys.stdout.buffer.write(bytes(b) + os.urandom(768))' > "$T/htdocs/1k.bin"
h3_start || finish
fault_tables

# round NAME - one round of $CLIENTS; adds to MIXED, FAILED, REPEATED
MIXED=0 FAILED_REQ=0 REPEATED=0
round() {
    local name=$1 out rc line m f r
    out=$(fault_client --connect-timeout 10 --timeout 60 ranges "$CLIENTS" "$(h3_url 1k.bin)" \
        "$T/htdocs/1k.bin" --pad 2048 --handshake-retries 2 --procs 8 2>&1)
    rc=$?
    echo "$out" | grep -v '^ranges: [0-9]' | while IFS= read -r l; do log "  $l"; done
    line=$(echo "$out" | grep '^ranges: [0-9]*/')
    m=$(echo "$line" | sed -n 's/.* \([0-9]*\) mixed.*/\1/p')
    f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
    r=$(echo "$line" | sed -n 's/.* \([0-9]*\) handshakes repeated.*/\1/p')
    MIXED=$((MIXED + ${m:-0})) FAILED_REQ=$((FAILED_REQ + ${f:-0})) REPEATED=$((REPEATED + ${r:-0}))
    [ $rc -eq 0 ] && ok "$name: ${line#ranges: }" || fail "$name: ${line:-no summary (rc $rc)}"
}

round "no loss"
fault_loss hdrloss up 20
t0=$(date +%s%N)
for i in $(seq "$ROUNDS"); do
    before=$(fault_dropped hdrloss up)
    round "20 % loss, round $i"
    dropped=$(($(fault_dropped hdrloss up) - before))
    [ "$dropped" -gt 0 ] && log "round $i: the rule dropped $dropped client datagrams" ||
        fail "round $i: the rule dropped nothing: no loss was injected"
done
log "hdrloss: $(fault_report hdrloss), $((($(date +%s%N) - t0) / 1000000)) ms for $ROUNDS rounds"
[ "$MIXED" = 0 ] && [ "$FAILED_REQ" = 0 ] &&
    ok "$ROUNDS rounds of $CLIENTS at 20 % loss: 0 mixed, 0 failed ($REPEATED handshakes repeated)" ||
    fail "$ROUNDS rounds of $CLIENTS at 20 % loss: $MIXED mixed, $FAILED_REQ failed ($REPEATED handshakes repeated)"
fault_clear hdrloss
fault_healthy
finish
