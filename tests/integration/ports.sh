# SPDX-License-Identifier: MIT
# Ports for the tests and benches that cannot collide (sourced by lib.sh
# and by contrib/bench/*):
#
#   pick_port PORT        # sets $PORT to a port reserved for this shell
#   pick_port RELAY_PORT  # another one
#
# A port is handed out only if
#  * it lies outside the kernel's ephemeral range
#    (/proc/sys/net/ipv4/ip_local_port_range), where the client sockets of
#    the tests running beside this one get their ports from;
#  * nothing is bound to it over UDP or TCP on any address, IPv4 or IPv6:
#    ports_probe binds both protocols on 0.0.0.0 and [::] without
#    SO_REUSEADDR, which fails while any socket of the machine's network
#    namespace (a listener, a client, a connection in TIME_WAIT) holds it;
#  * no other test or bench of any checkout holds its reservation: an
#    flock(1) lock on ${TMPDIR:-/tmp}/quicd-test-ports/PORT, held through a
#    file descriptor of this shell until it exits (the kernel drops the
#    lock with the last descriptor, so a killed test leaves nothing stale).
#
# Those checks are made at one moment; a program outside the suite may
# still bind the port before our server does. start_suite (lib.sh) sees
# that bind fail and starts again on another port (ports_rebind).
#
# QD_PORT_RANGE=LO-HI narrows the choice (tests/integration/t_ports.sh).
# pick_port must not run in a subshell ($(...)): the reservation would end
# with it.

PORTS_LOCK_DIR=${QD_PORTS_LOCK_DIR:-${TMPDIR:-/tmp}/quicd-test-ports}
# Debian's python3 (the python3 on PATH may be a slower shim)
PORTS_PYTHON=${PORTS_PYTHON:-/usr/bin/python3}
[ -x "$PORTS_PYTHON" ] || PORTS_PYTHON=python3
PORTS_FDS=""     # the lock descriptors this shell holds (ports_fds_closed)
PORTS_ERR=""     # why the last pick_port failed

# ports_range - "LO HI" of the ports pick_port may draw from: QD_PORT_RANGE,
# else 10000 up to the start of the ephemeral range (or, if that starts too
# low for 1000 ports, from its end up to 65535)
ports_range() {
    local lo hi elo ehi
    if [ -n "${QD_PORT_RANGE:-}" ]; then
        lo=${QD_PORT_RANGE%-*} hi=${QD_PORT_RANGE#*-}
        echo "$lo $hi"
        return
    fi
    read -r elo ehi < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || { elo=32768 ehi=60999; }
    if [ "$elo" -gt 11000 ]; then
        echo "10000 $((elo - 1))"
    else
        echo "$((ehi + 1)) 65535"
    fi
}

# ports_probe PORT - 0 if PORT can be bound over UDP and TCP on 0.0.0.0 and
# [::] (IPv6 only) right now, without SO_REUSEADDR; 1 if not
ports_probe() {
    "$PORTS_PYTHON" -I -S - "$1" <<'PY'
import socket, sys
port = int(sys.argv[1])
for fam, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
    for typ in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        try:
            s = socket.socket(fam, typ)
        except OSError:
            continue          # no IPv6 in this namespace: nothing to collide with
        try:
            if fam == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((host, port))
        except OSError:
            sys.exit(1)
        finally:
            s.close()
PY
}

# pick_port VAR - a free port (see above) into the variable VAR, reserved
# until this shell exits or calls ports_release; 1 with PORTS_ERR set if
# none was found in 200 draws
pick_port() {
    local var=$1 lo hi p fd n
    read -r lo hi <<< "$(ports_range)"
    if ! [ "$lo" -ge 1 ] 2>/dev/null || ! [ "$hi" -ge "$lo" ] 2>/dev/null || [ "$hi" -gt 65535 ]; then
        PORTS_ERR="bad port range '$lo-$hi' (QD_PORT_RANGE?)"
        return 1
    fi
    mkdir -p "$PORTS_LOCK_DIR" 2>/dev/null && chmod 1777 "$PORTS_LOCK_DIR" 2>/dev/null
    n=$((hi - lo + 1))
    for _ in $(seq 200); do
        p=$((lo + (RANDOM * 32768 + RANDOM) % n))
        # flock works on a descriptor open for reading, so the lock files
        # of other users (0644) lock as well as ours
        [ -e "$PORTS_LOCK_DIR/$p" ] || (umask 022 && : >> "$PORTS_LOCK_DIR/$p") 2>/dev/null
        # (braces: a bare "exec ... 2>/dev/null" would silence the shell's stderr for good)
        { exec {fd}<"$PORTS_LOCK_DIR/$p"; } 2>/dev/null || continue
        if flock -n "$fd"; then
            if ports_probe "$p"; then
                PORTS_FDS="$PORTS_FDS $p:$fd"
                printf -v "$var" '%s' "$p"
                return 0
            fi
            flock -u "$fd"
        fi
        exec {fd}>&-
    done
    PORTS_ERR="no free port in $lo-$hi after 200 draws"
    return 1
}

# ports_release PORT - give up the reservation of PORT
ports_release() {
    local e rest=""
    for e in $PORTS_FDS; do
        if [ "${e%%:*}" = "$1" ]; then
            eval "exec ${e#*:}>&-"
        else
            rest="$rest $e"
        fi
    done
    PORTS_FDS=$rest
}

# ports_exec CMD... - exec CMD without the reservation descriptors (a
# server we start must not hold them: run it as "ports_exec CMD &", and $!
# is CMD's pid)
ports_exec() {
    local e closes=""
    for e in $PORTS_FDS; do closes="$closes ${e#*:}>&-"; done
    eval "exec \"\$@\" $closes"
}
