# SPDX-License-Identifier: MIT
# Headless Chromium without QUIC flags loads the sample page (etc/htdocs)
# over HTTP/2: nextHopProtocol "h2", the page shows it and its calls to
# /api/time and /api/echo answer; the h2 responses' Alt-Svc makes it try
# HTTP/3 for the later navigations to the same origin in the same browser
# (driven through the DevTools pipe, cdp.py, with real waits between them).
#
# Chromium's QUIC certificate check wants a certificate issued by a known
# (built-in) root: the test certificate, pinned by its SPKI
# (--ignore-certificate-errors-spki-list), is accepted over TCP but not
# for QUIC (ERR_QUIC_CERT_ROOT_NOT_KNOWN, "TLS handshake failure 46:
# certificate unknown"), unless the host is one of --origin-to-force-quic-on.
# So: run 1, no QUIC flag at all: h2 first, Alt-Svc found, and a later
# navigation over h3 or, as Chromium does today, that exact refusal,
# shown from its net log. Run 2 names localhost on ANOTHER port in
# --origin-to-force-quic-on, which only lets the certificate pass for QUIC
# for the host "localhost" and forces nothing on our origin: h2 first,
# then h3 because of Alt-Svc.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_chromium
need_pycurl
hints=$(sed -n '/^early_hints *=/,/^$/p' "$QD_SRCDIR/etc/quicd.conf")
[ -n "$hints" ] || die "etc/quicd.conf sets no early_hints"
h3_setup 1 "$hints"
cp "$QD_SRCDIR"/etc/htdocs/* "$T/htdocs/"
CDP_PY="$QD_SRCDIR/tests/integration/cdp.py"
h3_start || finish
log "$("$H3_CHROMIUM" --version 2>/dev/null | head -n1)"

NHP="performance.getEntriesByType('navigation')[0].nextHopProtocol"
# the sample page's own report once its two fetches are done (at most 20 s:
# a loaded machine's browser may be slow)
PAGE="new Promise(done => { const t0 = Date.now(); (function poll() {
    const v = ['protocol', 'time', 'echo'].map(id => document.getElementById(id).textContent);
    if (!v.some(x => x.startsWith('checking')) || Date.now() - t0 > 20000) done(v);
    else setTimeout(poll, 50); })(); })"
LATER=8   # later navigations, 0.5 s apart

# browse NAME [CHROMIUM ARGS...] - one browser session: the sample page,
# then LATER more navigations to the same origin (/?n=N, so no cache
# entry answers); cdp.py's output in $T/NAME.out, the net log in
# $T/NAME.netlog.json
browse() {
    local name=$1; shift
    local steps=(nav "https://localhost:$PORT/" eval "$NHP" eval "$PAGE") n
    for n in $(seq 2 $((LATER + 1))); do
        steps+=(sleep 0.5 nav "https://localhost:$PORT/?n=$n" eval "$NHP")
    done
    steps+=(eval "$PAGE")
    bg python3 "$CDP_PY" 120 "$H3_CHROMIUM" --headless=new --no-sandbox --disable-gpu \
        --no-first-run --no-default-browser-check --disable-extensions \
        --user-data-dir="$T/chrome-$name" \
        --host-resolver-rules="MAP localhost 127.0.0.1" \
        --ignore-certificate-errors-spki-list="$(h3_spki_hash)" \
        --log-net-log="$T/$name.netlog.json" "$@" -- "${steps[@]}" \
        > "$T/$name.out" 2>> "$T/chrome.log"
}
# run_browse NAME [ARGS...] - browse, wait for it (cdp.py ends within 120 s)
run_browse() {
    browse "$@"
    wait "$BG_PID"
    local rc=$?
    log "$1: cdp.py exit $rc"
    sed 's/^/    /' "$T/$1.out"
    PROTOS=$(sed -n 's/^eval: "\(h[0-9]\|http\/1.1\|\)"$/\1/p' "$T/$1.out" | tr '\n' ' ')
    PAGES=$(grep '^eval: \[' "$T/$1.out")
}
# netlog NAME QUERY - facts from a net log: "altsvc" (the Alt-Svc entries
# Chromium found for our origin), "quic_closed" (why its QUIC sessions to
# us ended)
netlog() {
    python3 - "$T/$1.netlog.json" "$2" "localhost:$PORT" <<'PY'
import json, sys
path, query, origin = sys.argv[1:4]
try:
    j = json.load(open(path))
except ValueError:   # a log cut short: the browser did not close it
    text = open(path).read().rstrip().rstrip(",")
    j = json.loads(text + "]}")
types = {v: k for k, v in j["constants"]["logEventTypes"].items()}
for e in j["events"]:
    t, p = types.get(e["type"]), e.get("params", {})
    if query == "altsvc" and t == "HTTP_STREAM_JOB_CONTROLLER_ALT_SVC_FOUND" and origin in p.get("alt_svc", ""):
        print("%s (broken: %s)" % (p["alt_svc"], p.get("is_broken")))
    elif query == "quic_closed" and t == "QUIC_SESSION_CLOSED":
        print("from_peer=%s %s" % (p.get("from_peer"), p.get("details")))
PY
}

# Run 1: no QUIC flag at all.
run_browse noquic
first=${PROTOS%% *} later=${PROTOS#* }
page=$(echo "$PAGES" | head -n1)
[ "$first" = h2 ] && ok "without QUIC flags Chromium loads the sample page over h2 (nextHopProtocol)" ||
    fail "first navigation: '$first' (protocols: $PROTOS)"
case $page in
'eval: ["h2", "20'*'"\"hello from the sample page\" (26 bytes)"]') ok "the page shows h2 and its /api/time and /api/echo answered: $page" ;;
*) fail "the sample page over h2: $page" ;;
esac
alt=$(netlog noquic altsvc | sed -n 1p)
[ -n "$alt" ] && ok "Chromium took the Alt-Svc of the h2 responses: $alt" ||
    fail "no Alt-Svc alternative for localhost:$PORT in Chromium's net log"
case " $later " in
*" h3 "*)
    ok "without QUIC flags a later navigation to the same origin went over h3 (Alt-Svc): $PROTOS" ;;
*)
    why=$(netlog noquic quic_closed | grep 'from_peer=False.*certificate unknown' | sed -n 1p)
    if [ -n "$why" ] && [ -z "$(echo "$later" | tr -d 'h2 ')" ]; then
        log "NOTE: Chromium tried h3 via Alt-Svc and refused the test certificate for QUIC itself:"
        log "NOTE:   $why"
        log "NOTE: its QUIC verifier wants a certificate from a known root (ERR_QUIC_CERT_ROOT_NOT_KNOWN);"
        log "NOTE: the SPKI pin counts for TCP only, so without QUIC flags this browser stays on h2: $PROTOS"
        ok "without QUIC flags the later navigations stay on h2 for exactly that reason (Chromium's own refusal, not the server's)"
    else
        fail "later navigations: $PROTOS; Chromium's QUIC sessions: $(netlog noquic quic_closed | sed -n 1,3p | tr '\n' ' ')"
    fi ;;
esac

# Run 2: the unknown root allowed for QUIC to "localhost" (through another
# origin, nothing listens there); our origin is not forced onto QUIC.
new_port other
before=$(sql "SELECT count(*) FROM connections WHERE alpn = 'h3' AND streams > 0")
run_browse allowroot --origin-to-force-quic-on="localhost:$other"
first=${PROTOS%% *} later=${PROTOS#* }
[ "$first" = h2 ] && ok "with QUIC allowed the test certificate the first navigation is still h2 (nothing forced on localhost:$PORT)" ||
    fail "first navigation: '$first' (protocols: $PROTOS)"
case " $later " in
*" h3 "*) ok "a later navigation to the same origin went over h3 because of Alt-Svc: $PROTOS" ;;
*) fail "no later navigation over h3: $PROTOS; QUIC sessions: $(netlog allowroot quic_closed | sed -n 1,3p | tr '\n' ' ')" ;;
esac
page=$(echo "$PAGES" | tail -n1)
case $page in
'eval: ["h3", "20'*'"\"hello from the sample page\" (26 bytes)"]') ok "the last page shows h3 and its API calls answered: $page" ;;
*) fail "the last page: $page" ;;
esac
h3_with_streams() { [ "$(sql "SELECT count(*) FROM connections WHERE alpn = 'h3' AND streams > 0")" -gt "$before" ]; }
wait_until 10 h3_with_streams && ok "quicd recorded Chromium's HTTP/3 connection with requests on it" ||
    fail "no HTTP/3 connection with streams recorded"
finish
