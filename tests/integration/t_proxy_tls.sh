# SPDX-License-Identifier: MIT
# https:// upstream servers (issue 24, part 4): Debian's nginx with TLS
# behind quicd. With the server's CA in proxy_ca_file and sni=localhost
# the certificate is verified and requests go through (byte-identical,
# kept alive: nginx sees one connection); a name the certificate does not
# carry, or a server whose certificate no CA in the file signed, fails
# verification: 502, the cause in the log, nothing reaches nginx's
# access log for it; verify=no accepts the same server. The upstream
# daemon checks an https:// server by its connect.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
. "$(dirname "$0")/proxylib.sh"
need_pycurl
h3_setup 1
new_port PT
new_port PU
mkdir -p "$T/ca" "$T/rogue"
make_cert "$T/ca" || die "openssl could not make the upstream's certificate"
make_cert "$T/rogue" || die "openssl could not make the rogue certificate"
nginx_start "$T/nginx" '$server_port $request_uri $connection $ssl_server_name' "
	server {
		listen 127.0.0.1:$PT ssl;
		ssl_certificate $T/ca/cert.pem;
		ssl_certificate_key $T/ca/key.pem;
		root $T/nginx/www;
	}
	server {
		listen 127.0.0.1:$PU ssl;
		ssl_certificate $T/rogue/cert.pem;
		ssl_certificate_key $T/rogue/key.pem;
		root $T/nginx/www;
	}"
head -c 200000 /dev/urandom > "$T/nginx/www/t.bin"
chmod -R o+rX "$T/nginx/www"
nginx_up() { curl -sk -o /dev/null "https://127.0.0.1:$PT/probe"; } # (a 404: not counted below)
wait_until 10 nginx_up || die "nginx did not start: $(cat "$T/nginx/nginx.out" "$T/nginx/logs/error.log")"
: > "$T/nginx/logs/access.log"

cat > "$T/proxy" <<TBL
group tls check=/ check_interval=200ms
server tls https://127.0.0.1:$PT sni=localhost
group wrongname
server wrongname https://127.0.0.1:$PT sni=other.example
group rogue
server rogue https://127.0.0.1:$PU sni=localhost
group noverify
server noverify https://127.0.0.1:$PU sni=localhost verify=no
route */tls/ tls strip
route */wrongname/ wrongname strip
route */rogue/ rogue strip
route */noverify/ noverify strip
TBL
h3_conf 1 "proxy_table = $T/proxy" "proxy_ca_file = $T/ca/cert.pem"
h3_start || finish

for i in 1 2 3; do
    h3get req "$(h3_url tls/t.bin)" "$T/t$i" > "$T/t$i.out" 2>&1
done
cmp -s "$T/t1" "$T/nginx/www/t.bin" && cmp -s "$T/t3" "$T/nginx/www/t.bin" &&
    ok "https:// upstream verified (CA file, SNI localhost): 200 KB identical" ||
    fail "https:// upstream: $(tail -n 1 "$T/t1.out")"
n=$(awk -v p="$PT" '$1 == p && $2 == "/t.bin" { print $3 }' "$T/nginx/logs/access.log" | sort -u | wc -l)
sni=$(awk -v p="$PT" '$1 == p && $2 == "/t.bin" { print $4 }' "$T/nginx/logs/access.log" | sort -u)
[ "$n" = 1 ] && [ "$sni" = localhost ] && ok "three requests on one kept-alive TLS connection, SNI localhost" ||
    fail "TLS keep-alive: $n connections, SNI '$sni'"

h3get req "$(h3_url wrongname/t.bin)" "$T/w" > "$T/w.out" 2>&1
grep -q "status=502" "$T/w.out" && ok "a name the certificate does not carry: 502" ||
    fail "wrong name: $(tail -n 1 "$T/w.out")"
h3get req "$(h3_url rogue/t.bin)" "$T/r" > "$T/r.out" 2>&1
grep -q "status=502" "$T/r.out" && ok "a certificate no CA in proxy_ca_file signed: 502" ||
    fail "rogue certificate: $(tail -n 1 "$T/r.out")"
[ "$(awk -v p="$PU" '$1 == p' "$T/nginx/logs/access.log" | wc -l)" = 0 ] &&
    ok "no request reached a server that failed verification" ||
    fail "a request reached the unverified server: $(cat "$T/nginx/logs/access.log")"
h3get req "$(h3_url noverify/t.bin)" "$T/nv" > "$T/nv.out" 2>&1
cmp -s "$T/nv" "$T/nginx/www/t.bin" && ok "verify=no accepts it" || fail "verify=no: $(tail -n 1 "$T/nv.out")"

state() {
    quicctl upstreams --json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
for s in json.load(sys.stdin)["servers"]:
    if s["group"] == sys.argv[1]:
        print(s["state"], s["checks"], s["last"])' "$1"
}
checked() { set -- $(state tls); [ "$1" = up ] && [ "${2:-0}" -ge 2 ]; }
wait_until 5 checked && ok "the upstream daemon checks the https:// server by its connect: $(state tls)" ||
    fail "check of the https:// server: $(state tls)"

# a table with https:// servers and a CA file that cannot be read: refused (quicd -t, reload)
sed -i "s|^proxy_ca_file = .*|proxy_ca_file = $T/missing.pem|" "$CONF"
out=$("$QUICD" -t -c "$CONF" 2>&1) && fail "quicd -t accepted a missing proxy_ca_file" ||
    { echo "$out" | grep -q "proxy_ca_file $T/missing.pem: No such file" &&
        ok "quicd -t refuses a missing proxy_ca_file" || fail "quicd -t: $out"; }
out=$(quicctl reload 2>&1) && fail "reload accepted a missing proxy_ca_file" ||
    { echo "$out" | grep -q "proxy_ca_file" && ok "a reload refuses it and keeps running" || fail "reload: $out"; }
h3get req "$(h3_url tls/t.bin)" "$T/after" > "$T/after.out" 2>&1
cmp -s "$T/after" "$T/nginx/www/t.bin" && ok "the old configuration still proxies" ||
    fail "after the refused reload: $(tail -n 1 "$T/after.out")"
finish
