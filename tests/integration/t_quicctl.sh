# SPDX-License-Identifier: MIT
# quicctl's commands and errors: start/stop in the background, config
# views, not running, permission denied.
. "$(dirname "$0")/lib.sh"
setup 1

out=$(quicctl status 2>&1); rc=$?
[ "$rc" -eq 1 ] && [ "$(echo "$out" | wc -l)" -eq 1 ] && echo "$out" | grep -q "quicctl: quicd is not running" && ok "status when not running: one line, exit 1" || fail "rc=$rc $out"
out=$(quicctl stop 2>&1); rc=$?
[ "$rc" -eq 1 ] && echo "$out" | grep -q "not running" && ok "stop when not running: exit 1" || fail "rc=$rc $out"
out=$(quicctl frobnicate 2>&1); rc=$?
[ "$rc" -eq 1 ] && echo "$out" | grep -q 'unknown command "frobnicate"' && ok "unknown command: exit 1" || fail "rc=$rc $out"

# config: effective values (postconf), -n only the explicit ones, -d defaults, single keys.
out=$(quicctl config) && ok "config exits 0" || fail "config"
echo "$out" | grep -qx "workers = 1" && ok "config shows the file's value" || fail "$out"
echo "$out" | grep -qx "idle_timeout = 30s" && ok "config shows defaults for unset keys" || fail "$out"
[ "$(quicctl config -n | wc -l)" -eq "$(grep -c '^[a-z]' "$CONF")" ] && ok "config -n shows only keys set in the file" || fail "$(quicctl config -n)"
quicctl config -d | grep -qx "workers = auto" && ok "config -d shows compiled-in defaults" || fail "-d"
[ "$(quicctl config workers idle_timeout)" = "$(printf 'workers = 1\nidle_timeout = 30s')" ] && ok "config KEY..." || fail "config keys"
out=$(quicctl config nosuchkey 2>&1); rc=$?
[ "$rc" -eq 1 ] && echo "$out" | grep -q "nosuchkey: unknown configuration key" && ok "config unknown key: exit 1" || fail "rc=$rc $out"

# start in the background (the master detaches), then stop.
# (ports_exec: the detached master must not hold the port reservations)
out=$(QUICD_PROGRAM="$QUICD" ports_exec "$QUICCTL_BIN" -c "$CONF" start 2>&1) && ok "quicctl start exits 0" || fail "start: $out"
echo "$out" | grep -q "quicd started (pid [0-9]*)" && ok "start reports the pid" || fail "$out"
MASTER_PID=$(cat "$T/run/quicd.pid" 2>/dev/null)
[ -n "$MASTER_PID" ] && kill -0 "$MASTER_PID" && ok "master runs detached (pid $MASTER_PID)" || fail "no master"
all_running && ok "every daemon running after start" || fail "$(quicctl status)"
[ "$(ps -o sid= -p "$MASTER_PID" | tr -d ' ')" != "$(ps -o sid= -p $$ | tr -d ' ')" ] && ok "master detached into its own session" || fail "not detached"
out=$(QUICD_PROGRAM="$QUICD" quicctl start 2>&1); rc=$?
[ "$rc" -eq 1 ] && echo "$out" | grep -q "already running (pid $MASTER_PID)" && ok "second start refused" || fail "rc=$rc $out"

# Permission denied: another user may not use the control socket.
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
    chmod 755 "$T/run"
    out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups "$QUICCTL_BIN" -c "$CONF" status 2>&1); rc=$?
    [ "$rc" -eq 1 ] && echo "$out" | grep -q "permission denied" && ok "other user: permission denied, exit 1" || fail "rc=$rc $out"
else
    log "not root: permission test needs a second user; checked by the socket mode instead"
    [ "$(stat -c %a "$T/run/control.sock")" = 600 ] && ok "control socket 0600" || fail "mode"
fi

kids=$(descendants "$MASTER_PID")
out=$(quicctl stop) && ok "stop exits 0" || fail "stop: $out"
# (running: an exited orphan is a zombie until PID 1, which may be slow, reaps it)
running "$MASTER_PID" && fail "master still alive after stop returned" || ok "master gone when stop returns"
left=""; for p in $kids; do running "$p" && left="$left $p"; done
[ -z "$left" ] && ok "no daemon left" || fail "left:$left"
MASTER_PID=""
finish
