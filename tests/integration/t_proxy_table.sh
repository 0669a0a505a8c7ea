# SPDX-License-Identifier: MIT
# The proxy table (proxy_table): a good table is accepted by quicd -t and
# quicctl check, and quicctl config shows it as read (routes most specific
# first); a bad one is refused by quicd -t, quicctl check, quicd itself
# and a reload, each error as file:line and the word at fault, all of them
# listed; the running suite keeps its table and processes after a bad
# reload and takes a good one.
. "$(dirname "$0")/lib.sh"
setup 1

TABLE="$T/proxy"
cat > "$TABLE" <<'TBL'
# routes first: groups may come later
route */ app
route Example.COM/api/ api strip
route */static/ local
group app policy=least_conn
server app 127.0.0.1:8080 weight=2 max_conns=16
server app unix:/run/app.sock backup
group api policy=hash
    hash=header:x-user
server api [::1]:9000
TBL
echo "proxy_table = $TABLE" >> "$CONF"
cp "$CONF" "$T/good.conf"

out=$("$QUICD" -t -c "$CONF" 2>&1) && echo "$out" | grep -q "is valid" &&
    ok "quicd -t accepts a good table" || fail "quicd -t: $out"
out=$("$QUICCTL_BIN" -c "$CONF" check 2>&1) && ok "quicctl check accepts it" || fail "check: $out"
out=$("$QUICCTL_BIN" -c "$CONF" config 2>&1)
want="# proxy_table $TABLE: 2 groups, 3 routes
#   group app policy=least_conn check_interval=2000ms check_timeout=1000ms rise=2 fall=3 expect=2xx connect_timeout=5000ms read_timeout=60000ms send_timeout=60000ms idle_timeout=30000ms fail_timeout=10000ms queue=64 retries=2
#   server app 127.0.0.1:8080 weight=2 max_conns=16
#   server app unix:/run/app.sock weight=1 max_conns=0 backup
#   group api policy=hash hash=header:x-user check_interval=2000ms check_timeout=1000ms rise=2 fall=3 expect=2xx connect_timeout=5000ms read_timeout=60000ms send_timeout=60000ms idle_timeout=30000ms fail_timeout=10000ms queue=64 retries=2
#   server api [::1]:9000 weight=1 max_conns=0
#   route example.com/api/ api strip
#   route */static/ local
#   route */ app"
[ "$(echo "$out" | sed -n '/^# proxy_table /,$p')" = "$want" ] &&
    ok "quicctl config shows the table, most specific route first" ||
    fail "quicctl config: $(echo "$out" | sed -n '/^# proxy_table /,$p')"
echo "$out" | grep -qx "proxy_table = $TABLE" && ok "and the key" || fail "no proxy_table line"

# ---- a bad table: every error, as file:line
BADT="$T/proxy.bad"
cat > "$BADT" <<'TBL'
group app
server app 127.0.0.1:80800
server nope 127.0.0.1:80
route */ app
route example.com ap
frob
group empty
TBL
sed "s|^proxy_table = .*|proxy_table = $BADT|" "$CONF" > "$T/bad.conf"
out=$("$QUICD" -t -c "$T/bad.conf" 2>&1); rc=$?
echo "$out" > "$T/t.out"
[ "$rc" -eq 1 ] && ok "quicd -t exits 1 on a bad table" || fail "quicd -t rc=$rc"
for e in "$BADT:2: 127.0.0.1:80800: the port is 1-65535" "$BADT:3: nope: no such group" \
    "$BADT:5: example.com: want HOST/PREFIX" "$BADT:6: frob: unknown record" \
    "$BADT:7: empty: group has no server" "$BADT:1: app: group has no server"; do
    grep -qF "$e" "$T/t.out" && ok "names: $e" || fail "missing \"$e\" in: $out"
done
out=$("$QUICCTL_BIN" -c "$T/bad.conf" check 2>&1); rc=$?
[ "$rc" -eq 1 ] && [ "$(echo "$out" | grep -c "^$BADT:")" -eq 6 ] &&
    echo "$out" | tail -n 1 | grep -q "^quicctl: proxy table .* has errors" &&
    ok "quicctl check lists the 6 errors and exits 1" || fail "quicctl check rc=$rc: $out"
[ "$(echo "$out" | sed -n "s|^$BADT:\([0-9]*\):.*|\1|p" | tr '\n' ' ')" = "1 2 3 5 6 7 " ] &&
    ok "in line order" || fail "order: $out"
out=$("$QUICD" -f -c "$T/bad.conf" 2>&1); rc=$?
[ "$rc" -eq 1 ] && echo "$out" | grep -qF "$BADT:3: nope" && ok "quicd does not start with a bad table" ||
    fail "quicd rc=$rc: $out"
out=$("$QUICD" -t -c "$T/good.conf" -o proxy_table="$T/none" 2>&1); rc=$?
[ "$rc" -eq 1 ] && echo "$out" | grep -qF "$T/none: cannot read" && ok "a missing table is a clear error" ||
    fail "missing table rc=$rc: $out"

# ---- reloads: a bad table is refused, the running suite keeps going; a good one is taken
start_suite || finish
pids() { quicctl status | awk 'NR > 1 { print $3 }' | sort | tr '\n' ' '; }
before=$(pids)
cp "$BADT" "$TABLE"
out=$(quicctl reload 2>&1); rc=$?
[ "$rc" -eq 1 ] && echo "$out" | grep -qF "$TABLE:3: nope: no such group" &&
    echo "$out" | grep -q "keeping the current configuration" &&
    ok "a reload with a bad table is refused, naming file:line" || fail "bad reload rc=$rc: $out"
[ "$(pids)" = "$before" ] && ok "no process touched" || fail "pids: $before -> $(pids)"
printf 'group g\nserver g 10.0.0.1:80\nroute */x/ g\n' > "$TABLE"
out=$(quicctl reload 2>&1) && ok "a reload with a good table is taken" || fail "good reload: $out"
finish
