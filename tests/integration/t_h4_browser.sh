# SPDX-License-Identifier: MIT
# Chromium renders the sample site (etc/htdocs) over HTTP/3 with the sample
# configuration's early_hints; its script calls GET /api/time and POST
# /api/echo and writes the results into the page, which must show them.
# A screenshot is kept in the build directory (t_h4_browser.png).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_chromium
need_pycurl
hints=$(sed -n '/^early_hints *=/,/^$/p' "$QD_SRCDIR/etc/quicd.conf")
[ -n "$hints" ] || die "etc/quicd.conf sets no early_hints"
h3_setup 1 "$hints" "log_level = debug" # for the handshake failure check
cp "$QD_SRCDIR"/etc/htdocs/* "$T/htdocs/"
h3_start || finish

chrome() { h3_chrome --virtual-time-budget=5000 "$@"; }
# A cold Chromium on a busy machine can time out: try at most 3 times,
# each bounded and logged; a handshake refused by the server fails the
# test below (see t_h3_browser.sh).
for attempt in 1 2 3; do
    dom=$(chrome --dump-dom "https://localhost:$PORT/"); rc=$?
    echo "$dom" | grep -q '<dd id="protocol">[^<]' && break
    log "attempt $attempt: no page (chromium exit $rc): $(tail -n 2 "$T/chrome.log" | tr '\n' ' ')"
done
text=$(echo "$dom" | sed -e 's/<[^>]*>/ /g' | tr -s ' \n' ' ')
log "chromium exit $rc; page: $(echo "$text" | head -c 600)"
proto=$(echo "$dom" | sed -n 's/.*<dd id="protocol">\([^<]*\)<.*/\1/p')
time=$(echo "$dom" | sed -n 's/.*<dd id="time">\([^<]*\)<.*/\1/p')
echo_=$(echo "$dom" | sed -n 's/.*<dd id="echo">\([^<]*\)<.*/\1/p')
[ "$proto" = h3 ] && ok "the sample page loaded over HTTP/3" || fail "protocol: '$proto'"
echo "$time" | grep -Eq '^20[0-9-]+T[0-9:.]+Z \(HTTP/3, quicd [0-9.]+' &&
    ok "its script called GET /api/time: $time" || fail "time: '$time'"
[ "$echo_" = '"hello from the sample page" (26 bytes)' ] &&
    ok "its script called POST /api/echo: $echo_" || fail "echo: '$echo_'"
shot="$QD_BUILDDIR/t_h4_browser.png"
rm -f "$shot"
chrome --window-size=1000,700 --screenshot="$shot" "https://localhost:$PORT/" >/dev/null
[ -s "$shot" ] && ok "screenshot kept as $shot" || fail "no screenshot"
n=$(grep -c "TLS handshake failed\|TLS refused CRYPTO" "$T/quicd.log")
[ "$n" = 0 ] && ok "no Chromium handshake refused by the server" ||
    fail "$n handshake failures: $(grep -m2 "TLS handshake failed\|TLS refused CRYPTO" "$T/quicd.log")"
finish
