# SPDX-License-Identifier: MIT
# request_history (issue 25): which requests get a row of their own in the
# stats database. With "errors" only the 404s of a mix of 200s and 404s
# are rows; a reload to "none" writes no more rows, and to "sample:1"
# every request again; a bad value fails quicd -t naming file:line and
# the key. Whatever it says, the metrics count every request.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
h3_setup 1 "stats_interval = 1s" "request_history = errors"
h3_start || finish

# rows ENDING - request rows whose path ends in ENDING
rows() { sql "SELECT count(*) FROM requests WHERE path LIKE '%$1'"; }
# counted CLASS - the metrics' HTTP/3 requests of that class
counted() { quicctl metrics | awk -v s="quicd_http_requests_total{protocol=\"h3\",class=\"$1\"}" '$1 == s { print $2 }'; }
# round TAG - 3 x 200 and 2 x 404 over HTTP/3, paths ending in TAG
round() {
    for i in 1 2 3; do h3get fetch "$(h3_url "?$1")" - > /dev/null || fail "GET 200 $1"; done
    for i in 1 2; do h3get fetch "$(h3_url "missing-$1")" - > /dev/null || fail "GET 404 $1"; done
}
# settle N404 - wait until the metrics have counted N404 404s (records go with them)
settle() { n=$1; got() { [ "$(counted 4xx)" = "$n" ]; }; wait_until 10 got; sleep 1.5; }

round e1
settle 2
[ "$(rows e1)" = 2 ] && [ "$(sql "SELECT count(*) FROM requests WHERE path LIKE '%e1' AND status = 404")" = 2 ] &&
    ok "errors: the 2 404s are rows, the 200s are not" ||
    fail "errors: $(rows e1) rows: $(sql "SELECT path, status FROM requests")"

write_conf 1 "stats_interval = 1s" "request_history = none" "tls_certificate = $T/cert.pem" "tls_key = $T/key.pem"
quicctl reload > "$T/reload.out" 2>&1 || fail "reload to none: $(cat "$T/reload.out")"
round n1
settle 4
[ "$(rows n1)" = 0 ] && ok "none: no rows" || fail "none: $(rows n1) rows"

write_conf 1 "stats_interval = 1s" "request_history = sample:1" "tls_certificate = $T/cert.pem" "tls_key = $T/key.pem"
quicctl reload > "$T/reload.out" 2>&1 || fail "reload to sample:1: $(cat "$T/reload.out")"
round s1
settle 6
[ "$(rows s1)" = 5 ] && ok "sample:1: every request a row" || fail "sample:1: $(rows s1) rows"
c2=$(counted 2xx)
[ "$c2" -ge 9 ] && ok "the metrics counted every request: $c2 2xx, $(counted 4xx) 4xx" ||
    fail "metrics 2xx: $c2, want 9 or more"

for bad in "sample:0" "sample:x" "some"; do
    write_conf 1 "request_history = $bad" "tls_certificate = $T/cert.pem" "tls_key = $T/key.pem"
    out=$("$QUICD" -t -c "$CONF" 2>&1)
    line=$(grep -n '^request_history' "$CONF" | cut -d: -f1)
    echo "$out" | grep -q "$CONF:$line.*request_history" && ok "quicd -t: request_history = $bad: $out" ||
        fail "quicd -t with request_history = $bad: $out"
done
finish
