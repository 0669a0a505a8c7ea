# SPDX-License-Identifier: MIT
# connections.pkts_lost: a gtlsclient that drops 5% of the packets it
# receives (--rx-loss) makes the server declare packets lost and
# retransmit; the download is still byte-identical and its connection row
# counts the losses: at least one, and at most twice the datagrams the
# client dropped plus those the kernel dropped (UDP InErrors, which has
# the RcvbufErrors, and the backlog drops of /proc/net/softnet_stat, which
# a busy machine's loopback has; read before and after) — twice, because ngtcp2 counts a lost packet once for
# each stream whose data it carried (the response and, early on, the
# control or QPACK stream). A clean connection counts no more than twice
# what the kernel dropped (on an idle machine: none).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_gtlsclient
need_pycurl
h3_setup 1 "stats_interval = 1s"
head -c 300000 /dev/urandom > "$T/htdocs/300k.bin"
h3_start || finish

# kernel_drops - the kernel's count of datagrams dropped: UDP datagrams
# not delivered (InErrors: a full receive buffer and the like; IPv4, this
# network namespace) plus the packets every CPU's input backlog dropped
# (softnet_stat's second column, hexadecimal; where loopback traffic
# queues when the CPUs are busy)
kernel_drops() {
    local n _ d
    n=$(awk '$1 == "Udp:" && $2 ~ /^[0-9]+$/ { print $4 }' /proc/net/snmp)
    while read -r _ d _; do n=$((n + 16#$d)); done < /proc/net/softnet_stat
    echo "$n"
}
[ "$(awk '$1 == "Udp:" && $2 !~ /^[0-9]+$/ { print $4 }' /proc/net/snmp)" = InErrors ] ||
    die "unexpected /proc/net/snmp layout"

# run NAME GTLSCLIENT-ARGS... - one bounded download of 300k.bin; sets CID
# and KDROPS (datagrams the kernel dropped meanwhile, anyone's)
run() {
    local name=$1; shift
    local before
    before=$(kernel_drops)
    mkdir -p "$T/$name.dl"
    gtls 60 --download="$T/$name.dl" "$@" 127.0.0.1 "$PORT" "$(h3_url 300k.bin)" > "$T/$name.log"
    local rc=$?
    KDROPS=$(($(kernel_drops) - before))
    CID=$(gtls_server_cid "$T/$name.log")
    if cmp -s "$T/htdocs/300k.bin" "$T/$name.dl/300k.bin"; then
        ok "$name: 300 kB download byte-identical (server CID ${CID:-?}; kernel dropped $KDROPS)"
    else
        fail "$name: download differs (gtlsclient exit $rc)"
    fi
}
run clean
C_CLEAN=$CID K_CLEAN=$KDROPS
run lossy --rx-loss=0.05
C_LOSSY=$CID K_LOSSY=$KDROPS
dropped=$(grep -c "Simulated incoming packet loss" "$T/lossy.log")
log "gtlsclient dropped $dropped incoming datagrams"
[ "$dropped" -gt 0 ] || fail "gtlsclient dropped nothing: --rx-loss did not work"

have() { [ "$(sql "SELECT count(*) FROM connections WHERE conn_id IN ('$C_CLEAN', '$C_LOSSY')" 2>/dev/null)" = 2 ]; }
wait_until 15 have && ok "both connections recorded" || fail "records: $(sql "SELECT conn_id FROM connections")"
clean=$(sql "SELECT pkts_lost FROM connections WHERE conn_id = '$C_CLEAN'")
lossy=$(sql "SELECT pkts_lost FROM connections WHERE conn_id = '$C_LOSSY'")
out=$(sql "SELECT pkts_out FROM connections WHERE conn_id = '$C_LOSSY'")
log "pkts_lost: clean ${clean:-NULL}, lossy ${lossy:-NULL} (of ${out:-?} packets sent)"
[ -n "$clean" ] && [ "$clean" -le $((2 * K_CLEAN)) ] &&
    ok "the clean connection: $clean packets declared lost (the kernel dropped $K_CLEAN)" ||
    fail "clean pkts_lost ${clean:-NULL}, kernel dropped $K_CLEAN"
[ -n "$lossy" ] && [ "$lossy" -gt 0 ] && [ "$lossy" -le $((2 * (dropped + K_LOSSY))) ] &&
    ok "the lossy connection: $lossy packets declared lost; the client dropped $dropped, the kernel $K_LOSSY" ||
    fail "lossy pkts_lost ${lossy:-NULL}, client dropped $dropped, kernel $K_LOSSY"
finish
