# SPDX-License-Identifier: MIT
# quicd as process 1, as in a container (a PID namespace of the test's
# own): every daemon starts and keeps running (a child must not take a
# parent of pid 1 for a dead master), HTTP/3 is served, and quicctl stop
# ends it.
if [ "$(id -u)" != 0 ] || ! command -v unshare > /dev/null; then
    . "$(dirname "$0")/lib.sh"
    skip "needs root and unshare(1) for a PID namespace"
fi
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
h3_setup 1
# unshare --fork: its child is process 1 of the new namespace and execs quicd.
start_suite unshare --pid --fork --kill-child && ok "every daemon runs under a master that is process 1" ||
    finish
[ "$(proc_field master - pid)" = 1 ] && ok "status shows the master as pid 1" ||
    fail "master pid $(proc_field master - pid)"
sleep 1.5 # a child that took pid 1 for a dead master would be gone by now
all_running && [ "$(proc_field worker 0 restarts)" = 0 ] && ok "still running, no restarts" ||
    fail "$(quicctl status 2>&1)"
h3_wait_ready 5 && ok "serves HTTP/3" || fail "no HTTP/3"
grep -q "master already gone" "$T/quicd.log" && fail "a daemon said the master was gone" ||
    ok "no daemon took the master for gone"
t0=$(date +%s%N)
out=$(quicctl stop 2>&1)
ms=$((($(date +%s%N) - t0) / 1000000))
# quicctl stop waits for the master to exit; its pid file says 1 (the
# namespace's view), so it must not wait on the host's process 1: that
# would last until quicctl's own bound, drain_timeout (3 s) + 10 s. Below
# that, a loaded machine gets all the room.
[ "$ms" -lt 11000 ] && ok "quicctl stop: $out after $ms ms" || fail "quicctl stop took $ms ms: $out"
wait_until 5 sh -c "! kill -0 $MASTER_PID" && ok "the namespace is gone" || fail "still running"
MASTER_PID=""
finish
