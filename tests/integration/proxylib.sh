# SPDX-License-Identifier: MIT
# Helpers of the reverse-proxy tests (t_proxy*.sh), sourced after lib.sh
# and h3lib.sh.

BACKEND="$QD_SRCDIR/tests/integration/httpbackend.py"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# backend NAME ARGS... - start httpbackend.py (ARGS: --port P or --unix S,
# and its options) with --name NAME, output in $T/NAME.out (a Unix socket
# writable by the daemons' user: umask 0), and wait until it listens; its
# PID is BG_PID (ended with the test)
backend() {
    local name=$1
    shift
    (umask 0; bg ports_exec /usr/bin/python3 "$BACKEND" --name "$name" "$@" > "$T/$name.out" 2>&1
     echo "$BG_PID" > "$T/$name.pid")
    BG_PID=$(cat "$T/$name.pid")
    BG_PIDS="$BG_PIDS $BG_PID"
    wait_until 10 grep -q listening "$T/$name.out" || die "backend $name did not start: $(cat "$T/$name.out")"
}

# nginx_start DIR LOG_FORMAT SERVERS - Debian's nginx with its prefix, logs
# and temp paths in DIR, one worker, the access log DIR/logs/access.log in
# LOG_FORMAT (nginx variables, '$' escaped by the caller), and the server
# blocks SERVERS; returns once DIR/ready exists (the caller's probe)
nginx_start() {
    local dir=$1 format=$2 servers=$3
    [ -x "$NGINX" ] || skip "Debian's nginx is needed (contrib/install-deps)"
    mkdir -p "$dir/logs" "$dir/tmp" "$dir/www"
    cat > "$dir/nginx.conf" <<EOC
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log error;
events { worker_connections 256; }
http {
	log_format quicd_test '$format';
	access_log $dir/logs/access.log quicd_test;
	client_body_temp_path $dir/tmp/body;
	proxy_temp_path $dir/tmp/proxy;
	fastcgi_temp_path $dir/tmp/fastcgi;
	uwsgi_temp_path $dir/tmp/uwsgi;
	scgi_temp_path $dir/tmp/scgi;
	default_type application/octet-stream;
$servers
}
EOC
    # umask 0: a Unix socket it listens on must be writable by the daemons' user
    (umask 0; bg ports_exec "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" \
        > "$dir/nginx.out" 2>&1; echo "$BG_PID" > "$dir/nginx.pid.bg")
    BG_PIDS="$BG_PIDS $(cat "$dir/nginx.pid.bg")"
}

# h2load_h3 ARGS... - h2load over HTTP/3 (bounded), its summary lines
h2load_h3() {
    timeout -k 2 120 "$H2LOAD" --alpn-list=h3 "$@" 2>&1 |
        grep -E '^(requests|status codes|errors|finished)'
}

# need_h2load - h2load with HTTP/3 (contrib/install-deps builds it)
need_h2load() {
    H2LOAD=${H2LOAD:-$(command -v h2load)}
    [ -n "$H2LOAD" ] && "$H2LOAD" --help 2>&1 | grep -q -- --alpn-list ||
        skip "h2load with HTTP/3 is needed (contrib/install-deps builds it)"
}

# load_ok OUT [N] - h2load's OUT shows requests (N, if given) that all
# succeeded with a 2xx: none failed, errored or timed out, no other status
load_ok() {
    local n
    n=$(grep -oE '[0-9]+ succeeded, 0 failed, 0 errored, 0 timeout' "$1" | cut -d' ' -f1)
    [ -n "$n" ] && [ "$n" -gt 0 ] && { [ -z "${2:-}" ] || [ "$n" = "${2:-}" ]; } &&
        grep -qE "status codes: [0-9]+ 2xx, 0 3xx, 0 4xx, 0 5xx" "$1"
}

# done_of OUT - the requests h2load's OUT counts as done
done_of() { grep -oE '[0-9]+ done' "$1" | cut -d' ' -f1; }

# up_state GROUP SERVER - the server's state in quicctl upstreams --json
up_state() {
    quicctl upstreams --json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
for s in json.load(sys.stdin)["servers"]:
    if s["group"] == sys.argv[1] and s["server"] == sys.argv[2]:
        print(s["state"])
' "$1" "$2"
}
