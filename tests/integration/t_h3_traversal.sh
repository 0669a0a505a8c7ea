# SPDX-License-Identifier: MIT
# Nothing outside the document root is served over HTTP/3: dot-dot paths
# (plain, percent-encoded, mixed case, with encoded slashes), double slashes
# and symlinks to /etc or /etc/passwd answer 404 or 403 and never with the
# password file. The paths reach the server exactly as written (curl's
# PATH_AS_IS). A symlink to a file inside the root may be served.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/h3lib.sh"
need_pycurl
h3_setup 2

D="$T/htdocs"
echo "inside the root" > "$D/inside.txt"
mkdir -p "$D/a/b"
echo "deep" > "$D/a/b/deep.txt"
ln -s /etc "$D/etc-link"
ln -s /etc/passwd "$D/passwd-link"
ln -s inside.txt "$D/inside-link.txt"
ln -s ../../inside.txt "$D/a/b/up-link.txt"
mkdir -p "$T/out"
# a file outside the root that a broken resolver would reach with one ".."
echo "root:x:0:0:outside the document root" > "$T/outside.txt"

h3_start || finish

field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n1; }

# Every request on one client run (and connection, as long as the server
# keeps it); the body of request N is in $T/out/N.
PATHS=() WANT=()
want() { local codes=$1 p; shift; for p in "$@"; do PATHS+=("$p"); WANT+=("$codes"); done; }
want "404 403" \
    "/../etc/passwd" \
    "/../../../../../../etc/passwd" \
    "/%2e%2e/etc/passwd" \
    "/%2E%2E/%2E%2E/etc/passwd" \
    "/%2E%2E%2Fetc%2Fpasswd" \
    "/..%2f..%2fetc%2fpasswd" \
    "/..%2F..%2F..%2F..%2Fetc%2Fpasswd" \
    "/.%2e/.%2e/etc/passwd" \
    "/a/../../etc/passwd" \
    "/a/b/../../../../etc/passwd" \
    "/a/%2e%2e/%2e%2e/etc/passwd" \
    "//etc/passwd" \
    "/./../etc/passwd" \
    "/../outside.txt" \
    "/%2e%2e/outside.txt" \
    "/a/..%2f..%2foutside.txt" \
    "/etc-link/passwd" \
    "/etc-link/" \
    "/passwd-link"
# malformed as well: 400 is fine too
want "404 403 400" \
    '/..\..\etc\passwd' \
    "/%5c..%5c..%5cetc%5cpasswd" \
    "/%00/../etc/passwd" \
    "/inside.txt%00/../../etc/passwd"
# inside the root: a symlink to a file inside may be served, and if it is,
# it is that file; a ".." that stays inside is fine either way
want "200 404 403 400" /inside-link.txt /a/b/up-link.txt /a/b/../../inside.txt
want "200" /a/./b/deep.txt

args=()
for i in "${!PATHS[@]}"; do args+=("https://localhost:$PORT${PATHS[$i]}" "$T/out/$i"); done
h3get --timeout 30 fetch "${args[@]}" > "$T/fetch.log" 2>&1
mapfile -t LINES < "$T/fetch.log"
for i in "${!PATHS[@]}"; do
    path=${PATHS[$i]} line=${LINES[$i]:-}
    st=$(field "$line" status)
    case $line in "https://localhost:$PORT$path "*) ;; *) st="" ;; esac
    if grep -q "root:" "$T/out/$i" 2>/dev/null; then
        fail "$path: status ${st:-none} and the body has \"root:\""
    elif ! echo " ${WANT[$i]} " | grep -q " ${st:-none} "; then
        fail "$path: want ${WANT[$i]}: ${line:-no answer}"
    elif [ "$st" = 200 ] && ! cmp -s "$T/out/$i" "$D/inside.txt" && ! cmp -s "$T/out/$i" "$D/a/b/deep.txt"; then
        fail "$path: 200 with a body from elsewhere: $(head -c 80 "$T/out/$i")"
    else
        ok "$path: $st"
    fi
done

out=$(h3get fetch "$(h3_url inside.txt)" "$T/out/last" 2>&1)
[ "$(field "$out" status)" = 200 ] && cmp -s "$T/out/last" "$D/inside.txt" &&
    ok "still serving after all that" || fail "after the traversal attempts: $out"
finish
