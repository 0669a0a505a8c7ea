# SPDX-License-Identifier: MIT
# A bad configuration is refused with file:line, by quicd -t, quicctl check
# and quicd itself (which then does not start), and every error is listed.
. "$(dirname "$0")/lib.sh"
setup 1

cp "$CONF" "$T/good.conf"
BAD="$T/bad.conf"
cat "$CONF" > "$BAD"
cat >> "$BAD" <<'CONF'
idle_timeout = forever
no_such_key = 1
max_connections = 5
max_connections = 6
CONF
base=$(wc -l < "$CONF")
l1=$((base + 1)); l2=$((base + 2)); l4=$((base + 4))

out=$("$QUICD" -t -c "$T/good.conf" 2>&1) && ok "quicd -t accepts a good file" || fail "quicd -t good: $out"
echo "$out" | grep -q "is valid" && ok "quicd -t says valid" || fail "no 'valid' in: $out"

out=$("$QUICD" -t -c "$BAD" 2>&1); rc=$?
[ "$rc" -eq 1 ] && ok "quicd -t exits 1 on a bad file" || fail "quicd -t rc=$rc"
echo "$out" | grep -qF "$BAD:$l1: idle_timeout: invalid value \"forever\"" && ok "bad value names file:line and key" || fail "bad value: $out"
echo "$out" | grep -qF "$BAD:$l2: no_such_key: unknown configuration key" && ok "unknown key names file:line" || fail "unknown key: $out"
echo "$out" | grep -qF "$BAD:$l4: max_connections: duplicate key (first set at line $((base + 3)))" && ok "duplicate key names both lines" || fail "duplicate: $out"

out=$("$QUICCTL_BIN" -c "$BAD" check 2>&1); rc=$?
[ "$rc" -eq 1 ] && ok "quicctl check exits 1" || fail "quicctl check rc=$rc"
[ "$(echo "$out" | grep -c "^$BAD:")" -eq 3 ] && ok "quicctl check lists all three errors" || fail "check output: $out"
echo "$out" | tail -1 | grep -q "^quicctl: configuration .* has errors" && ok "quicctl check ends with one summary line" || fail "check summary: $out"

out=$("$QUICCTL_BIN" -c "$T/good.conf" check 2>&1) && ok "quicctl check accepts a good file" || fail "check good: $out"

out=$("$QUICD" -f -c "$BAD" 2>&1); rc=$?
[ "$rc" -eq 1 ] && ok "quicd refuses to start on a bad file" || fail "quicd started? rc=$rc"
echo "$out" | grep -qF "$BAD:$l1: idle_timeout" && ok "quicd names file:line" || fail "quicd output: $out"
[ ! -e "$T/run/control.sock" ] && ok "no control socket left behind" || fail "control socket exists"

out=$("$QUICD" -t -c "$T/missing.conf" 2>&1); rc=$?
[ "$rc" -eq 1 ] && echo "$out" | grep -q "missing.conf: cannot open" && ok "missing file is a clear error" || fail "missing file: rc=$rc $out"

out=$("$QUICD" -t -c "$T/good.conf" -o workers=zero 2>&1); rc=$?
[ "$rc" -eq 1 ] && echo "$out" | grep -q -- "-o: workers: invalid value" && ok "bad -o override is refused" || fail "-o: rc=$rc $out"

out=$("$QUICD" -t -c "$T/good.conf" -o daemon_directory=/nonexistent 2>&1); rc=$?
[ "$rc" -eq 1 ] && echo "$out" | grep -q "/nonexistent/listener" && ok "missing daemon programs are named" || fail "daemon dir: rc=$rc $out"
finish
