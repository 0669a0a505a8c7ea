#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The monitoring files of contrib/ agree with the metrics table
# (libshared/qd_metrics.def) and with Prometheus' own checker:
#  (a) contrib/grafana/quicd.json is valid JSON;
#  (b) every metric that its panels and template variables query, and that
#      the alert rules (contrib/prometheus/quicd-alerts.yml) use, is a family
#      of the table (a histogram's as _bucket, _sum or _count); every label
#      of a matcher is one that family has (or job, instance, le) and every
#      value it compares to is in that label's closed set; the labels of
#      by (...) and of {{label}} legends belong to the metrics queried;
#  (c) promtool check rules passes on the rules and promtool check config on
#      contrib/prometheus/prometheus.yml.example (which loads them).
# Exit codes (automake): 0 pass, 1 fail, 77 skip (no promtool, or no
# /usr/bin/python3 with yaml; under CI=true that is 99 instead), 99 hard
# error.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u

QD_SRCDIR=${QD_SRCDIR:-.}
DEF="$QD_SRCDIR/libshared/qd_metrics.def"
DASH="$QD_SRCDIR/contrib/grafana/quicd.json"
RULES="$QD_SRCDIR/contrib/prometheus/quicd-alerts.yml"
CONF="$QD_SRCDIR/contrib/prometheus/prometheus.yml.example"
PY=/usr/bin/python3
PROMTOOL=${PROMTOOL:-promtool}

for f in "$DEF" "$DASH" "$RULES" "$CONF"; do
    [ -f "$f" ] || { echo "ERROR: $f is missing"; exit 99; }
done

missing=
"$PY" -c 'import json, yaml' 2>/dev/null || missing="$PY with yaml (apt-get install python3-yaml)"
command -v "$PROMTOOL" >/dev/null 2>&1 || missing="${missing:+$missing, }promtool (apt-get install prometheus)"
if [ -n "$missing" ]; then
    if [ "${CI:-}" = true ]; then
        echo "ERROR: $missing not installed, and CI=true does not allow skipping"
        exit 99
    fi
    echo "SKIP: $missing not installed"
    exit 77
fi

PASSED=0
FAILED=0

# (a) and (b): one Python program; it prints "ok:" and "FAIL:" lines and
# exits 0, 1, or 99 when the table cannot be read.
"$PY" - "$DEF" "$DASH" "$RULES" <<'PY'
import json, re, sys
import yaml

def_path, dash_path, rules_path = sys.argv[1:4]

# the table: dimensions (label, values) and families (type, dimensions)
text = open(def_path).read()
text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
dims = {}
for m in re.finditer(r'QD_MDIM\(\s*([A-Z0-9_]+)\s*,\s*\d+\s*,\s*"([^"]*)"((?:\s*,\s*"[^"]*")*)\s*\)', text):
    dims[m.group(1)] = (m.group(2), re.findall(r'"([^"]*)"', m.group(3)))
# an instance dimension: its values are the numbers 0 to n - 1 (n configured, at most MAX)
for m in re.finditer(r'QD_MDIM_INSTANCE\(\s*([A-Z0-9_]+)\s*,\s*(\d+)\s*,\s*"([^"]*)"\s*\)', text):
    dims[m.group(1)] = (m.group(3), [str(i) for i in range(int(m.group(2)))])
fams = {}
for m in re.finditer(r'QD_METRIC\(\s*[A-Z0-9_]+\s*,\s*([A-Z_]+)\s*,\s*([A-Z0-9_]+)\s*,\s*([A-Z0-9_]+)\s*,\s*"([a-z0-9_]+)"', text):
    typ, d1, d2, name = m.groups()
    labels = {}
    for d in (d1, d2):
        if d not in dims:
            print(f"ERROR: {def_path}: {name} has an unknown dimension {d}")
            sys.exit(99)
        if dims[d][0]:
            labels[dims[d][0]] = set(dims[d][1])
    fams[name] = (typ, labels)
if not fams or "NONE" not in dims:
    print(f"ERROR: no families or dimensions found in {def_path}")
    sys.exit(99)

TARGET = {"job", "instance"}          # Prometheus' own target labels
OTHER = {"up"}                        # metrics that are not quicd's
LITERAL = re.compile(r"^[A-Za-z0-9_./-]+(\|[A-Za-z0-9_./-]+)*$")
failed = 0

def fail(where, msg):
    global failed
    failed += 1
    print(f"FAIL: {where}: {msg}")

def family(where, name):
    """The family of series |name| and the labels its series have, or None."""
    if name in fams:
        typ, labels = fams[name]
        if typ == "HISTOGRAM":
            fail(where, f"{name} is a histogram: use {name}_bucket, _sum or _count")
            return None
        return dict(labels)
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and base in fams:
            typ, labels = fams[base]
            if typ != "HISTOGRAM":
                fail(where, f"{name}: {base} is not a histogram")
                return None
            labels = dict(labels)
            if suffix == "_bucket":
                labels["le"] = None
            return labels
    fail(where, f"{name} is not a metric of qd_metrics.def")
    return None

def check_expr(where, expr, legend=""):
    """Checks one PromQL expression (and its legend) against the table."""
    known = set(TARGET)
    for m in re.finditer(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{([^}]*)\})?", expr):
        name, sel = m.group(1), m.group(3)
        if name.startswith("quicd_"):
            labels = family(where, name)
        elif sel is not None and not name.startswith("$"):
            if name not in OTHER:
                fail(where, f"{name} is neither quicd's nor one of {sorted(OTHER)}")
            labels = {}
        else:
            continue
        if labels is None:
            continue
        known |= set(labels)
        for lm in re.finditer(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', sel or ""):
            label, op, value = lm.groups()
            if label in TARGET:
                continue
            if label not in labels:
                fail(where, f"{name} has no label {label}")
                continue
            values = labels[label]
            if values is None or "$" in value:
                continue
            if op in ("=", "!="):
                wanted = [value]
            elif LITERAL.match(value):
                wanted = value.split("|")
            else:
                continue  # a real regular expression: not checked
            for v in wanted:
                if v not in values:
                    known_values = ", ".join(sorted(values)) if len(values) <= 10 else "quicd(8), METRICS"
                    fail(where, f'{name}: {label}="{v}" is not a value of {label} ({known_values})')
    for m in re.finditer(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", expr):
        for label in filter(None, (x.strip() for x in m.group(1).split(","))):
            if label not in known and label != "le":
                fail(where, f"by/on ({label}): no metric of the expression has that label")
    for label in re.findall(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}", legend):
        if label not in known:
            fail(where, f"legend {{{{{label}}}}}: no metric of the expression has that label")

# (a) the dashboard is JSON
try:
    dash = json.load(open(dash_path))
    print(f"ok: {dash_path} is valid JSON")
except ValueError as e:
    fail(dash_path, f"not valid JSON: {e}")
    sys.exit(1)

# (b) its panels (rows nest theirs) and template variables
def panels(ps):
    for p in ps:
        yield p
        yield from panels(p.get("panels", []))
n = 0
for p in panels(dash.get("panels", [])):
    for t in p.get("targets", []):
        if "expr" in t:
            n += 1
            check_expr(f'dashboard "{p.get("title")}" {t.get("refId")}', t["expr"], t.get("legendFormat", ""))
for v in dash.get("templating", {}).get("list", []):
    q = v.get("query")
    q = q.get("query", "") if isinstance(q, dict) else (q or "")
    if v.get("type") == "query":
        n += 1
        lv = re.match(r"\s*label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)\s*$", q)
        check_expr(f"dashboard variable ${v.get('name')}", lv.group(1) if lv else q,
                   "{{" + lv.group(2) + "}}" if lv else "")
if n == 0:
    fail(dash_path, "no expressions found")
print(f"ok: {n} dashboard expressions checked")

# (b) the alert rules
try:
    rules = yaml.safe_load(open(rules_path))
    groups = rules["groups"]
except (yaml.YAMLError, KeyError, TypeError) as e:
    fail(rules_path, f"not a rules file: {e}")
    sys.exit(1)
n = 0
for g in groups:
    for r in g.get("rules", []):
        n += 1
        check_expr(f"rule {r.get('alert') or r.get('record')}", str(r.get("expr", "")))
if n == 0:
    fail(rules_path, "no rules found")
print(f"ok: {n} alert rules checked")
sys.exit(1 if failed else 0)
PY
rc=$?
case $rc in
0) PASSED=$((PASSED + 1)) ;;
1) FAILED=$((FAILED + 1)) ;;
*) exit 99 ;;
esac

# (c) Prometheus' own checks; the config names the rules relative to itself
for check in "rules $RULES" "config $CONF"; do
    # shellcheck disable=SC2086 # two words: the kind of check and the file
    out=$("$PROMTOOL" check $check 2>&1)
    rc=$?
    if [ "$rc" -eq 0 ]; then
        PASSED=$((PASSED + 1))
        echo "ok: promtool check $check"
    else
        FAILED=$((FAILED + 1))
        echo "FAIL: promtool check $check (exit $rc):"
        printf '%s\n' "$out" | sed 's/^/  /'
    fi
done

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
