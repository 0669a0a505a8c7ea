# SPDX-License-Identifier: MIT
# The whole suite runs unprivileged: started by an ordinary user it warns
# that it keeps its identity, supervises, restarts and stops as usual.
# When the test runs as root it becomes "nobody" (setpriv) for the run.
. "$(dirname "$0")/lib.sh"
setup 2

AS=()
if [ "$(id -u)" -eq 0 ]; then
    command -v setpriv >/dev/null || skip "setpriv (util-linux) is needed to drop root"
    # nobody must be able to run the programs and own the tree.
    mkdir -p "$T/bin"
    for d in listener worker app stats upstream; do
        rm -f "$T/libexec/$d"; cp "$QD_BUILDDIR/daemons/$d/$d" "$T/libexec/$d"
    done
    cp "$QUICD" "$QUICCTL_BIN" "$T/bin/"
    QUICD="$T/bin/quicd"; QUICCTL_BIN="$T/bin/quicctl"
    chown -R nobody:nogroup "$T"
    AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
fi
me=$("${AS[@]}" id -u)
quicctl() { "${AS[@]}" "$QUICCTL_BIN" -c "$CONF" "$@"; }

start_suite "${AS[@]}" && ok "suite up as uid $me" || finish
bad=""
for p in $MASTER_PID $(descendants "$MASTER_PID"); do
    u=$(ps -o uid= -p "$p" | tr -d ' ')
    [ -n "$u" ] && [ "$u" != "$me" ] && bad="$bad $p:$u"
done
[ -z "$bad" ] && ok "every process runs as uid $me" || fail "other uids:$bad"
wait_until 5 grep -q "warning: not started as root (uid $me): keeping this identity" "$T/quicd.log" && ok "daemons warn that they keep their identity" || fail "no warning in log"

old=$(proc_field worker 1 pid)
kill -KILL "$old"
back() { [ "$(proc_field worker 1 state)" = running ] && [ "$(proc_field worker 1 pid)" != "$old" ]; }
wait_until 2 back && ok "worker restarted unprivileged" || fail "$(quicctl status)"
# Process events are committed as they arrive, but they do arrive
# asynchronously: wait (bounded) for the worker's exit and restart.
events6() { [ "$(sql 'select count(*) from process_events')" -ge 6 ]; }
wait_until 5 events6 && ok "stats database written unprivileged" || fail "no events: $(sql 'select event, role, instance from process_events')"

kids=$(descendants "$MASTER_PID")
quicctl stop >/dev/null && ok "stop" || fail "stop failed"
wait "$MASTER_PID"; MASTER_PID=""
# (running: an exited orphan is a zombie until PID 1, which may be slow, reaps it)
left=""; for p in $kids; do running "$p" && left="$left $p"; done
[ -z "$left" ] && ok "nothing left" || fail "left:$left"
[ ! -e "$T/run/control.sock" ] && ok "socket removed" || fail "socket left"
finish
