# SPDX-License-Identifier: MIT
# A 2 s blackhole mid-transfer (nftables drops everything both ways): a
# 4 MiB download that curl reads at 1 MiB/s is cut off for 2 s once 1 MiB
# has arrived, then resumes on the same connection and arrives
# byte-identical. The rules must have dropped datagrams both ways, the
# download must have lasted past the blackhole, and no daemon restarts.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
. "$(dirname "$0")/faultlib.sh"
fault_netns "$@"
need_pycurl
fault_setup 1
head -c 4194304 /dev/urandom > "$T/htdocs/4m.bin"
h3_start || finish
fault_tables

t0=$(date +%s%N)
fault_client --timeout 60 --connect-timeout 15 get --max-speed 1048576 --mark 1048576 "$T/mark" \
    "$(h3_url 4m.bin)" "$T/htdocs/4m.bin" > "$T/client.out" 2>&1 &
CLIENT=$!
BG_PIDS="$BG_PIDS $CLIENT"
if wait_until 30 test -e "$T/mark"; then
    log "1 MiB arrived after $((($(date +%s%N) - t0) / 1000000)) ms: blackhole for 2 s"
    tb=$(date +%s%N)
    fault_blackhole bh both 2
    te=$(date +%s%N)
else
    fail "the download never reached 1 MiB"
fi
wait "$CLIENT"
rc=$?
tc=$(date +%s%N)
out=$(cat "$T/client.out")
fault_log "$out"
log "bh: $(fault_report bh); the download ended $(((tc - te) / 1000000)) ms after the blackhole"
[ $rc -eq 0 ] && ok "4 MiB byte-identical across a 2 s blackhole: $(fault_summary "$out")" ||
    fail "across the blackhole: $(fault_summary "$out") (rc $rc)"
fault_check_dropped bh
[ -n "${tb:-}" ] && [ $(((te - tb) / 1000000)) -ge 2000 ] && [ "$tc" -gt "$te" ] &&
    ok "the download spanned the blackhole ($(((te - tb) / 1000000)) ms of it)" ||
    fail "the download did not span the blackhole"
fault_healthy
finish
