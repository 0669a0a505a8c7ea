/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	quicctl_status - `quicctl status [--json]`
 * SYNOPSIS
 *	quicctl_status()
 * DESCRIPTION
 *	Asks the master for its process list (one line per process of
 *	key=value pairs, see master_control.c) and prints it as a table or as
 *	JSON: {"processes": [{"role", "instance", "pid", "state", "uptime_s",
 *	"restarts", and for workers "connections" (QUIC), "tcp_connections"
 *	(TLS/TCP), "streams", "retry", "half_open", "new_conns_s",
 *	"retries_sent", "initials_dropped"}, ...]}. The table shows a
 *	worker's TCP connections (TCP) and its handshake load in NEW/S (new
 *	connection attempts in the last second) and HALF-OPEN.
 *
 *	`quicctl conns` prints the workers' live connections, with each
 *	one's protocol (h3, h2, http/1.1), as a table or JSON.
 * DIAGNOSTICS
 *	Exits 1 with one line on stderr when the master cannot be reached.
 */
#include "config.h"

/* system */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* libshared */
#include "qd_buf.h"
#include "qd_ipc.h"

/* local */
#include "quicctl.h"

#define MAX_FIELDS QUICCTL_MAX_FIELDS

typedef quicctl_kv kv;

static const char *get(const kv *f, int n, const char *key);

/* split_line - parse "k=v k=v" into |out|; returns the count */
static int split_line(char *line, kv *out)
{
    int n = 0;
    char *save = NULL;

    for (char *tok = strtok_r(line, " ", &save); tok && n < MAX_FIELDS;
         tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        if (eq == NULL)
            continue;
        *eq = '\0';
        snprintf(out[n].key, sizeof(out[n].key), "%s", tok);
        snprintf(out[n].val, sizeof(out[n].val), "%s", eq + 1);
        n++;
    }
    return n;
}

int quicctl_split_line(char *line, quicctl_kv *out)
{
    return split_line(line, out);
}

const char *quicctl_get(const quicctl_kv *f, int n, const char *key)
{
    return get(f, n, key);
}

static const char *get(const kv *f, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (strcmp(f[i].key, key) == 0)
            return f[i].val;
    return NULL;
}

/* is_number - a non-empty run of digits */
static bool is_number(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* uptime - "3d4h", "2h5m", "4m10s", "12s" */
static void uptime(const char *secs, char *out, size_t len)
{
    unsigned long long s = strtoull(secs ? secs : "0", NULL, 10);

    if (s >= 86400)
        snprintf(out, len, "%llud%lluh", s / 86400, s % 86400 / 3600);
    else if (s >= 3600)
        snprintf(out, len, "%lluh%llum", s / 3600, s % 3600 / 60);
    else if (s >= 60)
        snprintf(out, len, "%llum%llus", s / 60, s % 60);
    else
        snprintf(out, len, "%llus", s);
}

/*
 * generation_line - one worker generation: its phase (starting, serving,
 * draining) and what its workers still have
 */
static void generation_line(qd_buf *b, const kv *f, int n, bool json, bool first)
{
    static const char *const keys[] = {"generation", "workers", "ready", "connections",
                                       "tcp_connections", "streams", NULL};
    const char *phase = get(f, n, "phase");

    if (json) {
        qd_buf_printf(b, "%s\n  {\"phase\": ", first ? "" : ",");
        qd_buf_json_string(b, phase ? phase : "unknown");
        for (int i = 0; keys[i]; i++) {
            const char *v = get(f, n, keys[i]);
            qd_buf_printf(b, ", \"%s\": %s", keys[i], is_number(v) ? v : "0");
        }
        qd_buf_printf(b, "}");
        return;
    }
    const char *w = get(f, n, "workers"), *r = get(f, n, "ready");
    char workers[160];
    snprintf(workers, sizeof(workers), "%s/%s", r ? r : "?", w ? w : "?");
    qd_buf_printf(b, "%-10s %-9s %-8s %-11s %-6s %s\n", get(f, n, "generation"),
                  phase ? phase : "-", workers, get(f, n, "connections"),
                  get(f, n, "tcp_connections"), get(f, n, "streams"));
}

/* A worker's counters: UDP receive-queue drops and buffer sizes (worker_io.c),
 * connections closed for abuse, by cause (worker_guard.c), and the
 * reverse proxy's requests, its own 502/503/504 answers and retries (worker_proxy.c). */
static const char *const closed_keys[] = {"udp_rxq_drops", "udp_rcvbuf", "udp_sndbuf",
                                          "closed_header_bombs", "closed_reset_floods",
                                          "closed_frame_floods", "closed_protocol_errors",
                                          "proxied_requests", "proxy_errors", "proxy_retries"};

int quicctl_status(quicctl *q, bool json)
{
    static qd_ipc_msg reply;
    static char text[QD_IPC_MAX_BODY];
    uint32_t status = 1;
    int fd = quicctl_connect(q, false);
    qd_buf out, gens;
    bool first = true, first_gen = true;

    if (quicctl_request(fd, QD_MSG_CTL_STATUS, &reply, 5000) < 0)
        quicctl_die("no answer from quicd");
    qd_ipc_get_u32(&reply, QD_F_STATUS, &status);
    if (qd_ipc_get_str(&reply, QD_F_TEXT, text, sizeof(text)) < 0 || status != 0)
        quicctl_die("quicd answered with an error");

    qd_buf_init(&out);
    qd_buf_init(&gens);
    if (json)
        qd_buf_printf(&out, "{\"processes\": [");
    else
        qd_buf_printf(&out, "%-9s %-8s %-8s %-10s %-8s %-8s %-11s %-6s %-7s %-9s %s\n", "ROLE",
                      "INSTANCE", "PID", "STATE", "UPTIME", "RESTARTS", "CONNECTIONS", "TCP",
                      "NEW/S", "HALF-OPEN", "GEN");
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        kv f[MAX_FIELDS];
        int n = split_line(line, f);
        const char *role = get(f, n, "role"), *inst = get(f, n, "instance");
        const char *pid = get(f, n, "pid"), *state = get(f, n, "state");
        const char *up = get(f, n, "uptime_s"), *restarts = get(f, n, "restarts");
        const char *conns = get(f, n, "connections"), *next = get(f, n, "next_start_s");
        const char *tcp_conns = get(f, n, "tcp_connections");
        const char *streams = get(f, n, "streams"), *retry = get(f, n, "retry");
        const char *send_failures = get(f, n, "send_failures");
        const char *half_open = get(f, n, "half_open"), *new_conns = get(f, n, "new_conns_s");
        const char *retries = get(f, n, "retries_sent"), *drops = get(f, n, "initials_dropped");
        const char *udp_errs = get(f, n, "udp_send_errors"), *emsgsize = get(f, n, "udp_emsgsize");
        const char *gen = get(f, n, "generation"), *kind = get(f, n, "kind");
        if (kind != NULL && strcmp(kind, "generation") == 0) {
            generation_line(&gens, f, n, json, first_gen);
            first_gen = false;
            continue;
        }
        if (role == NULL || state == NULL)
            continue;
        bool has_inst = inst && strcmp(inst, "-1") != 0;
        if (json) {
            qd_buf_printf(&out, "%s\n  {\"role\": ", first ? "" : ",");
            qd_buf_json_string(&out, role);
            qd_buf_printf(&out, ", \"instance\": %s", has_inst && is_number(inst) ? inst : "null");
            qd_buf_printf(&out, ", \"pid\": %s", is_number(pid) && strcmp(pid, "0") ? pid : "null");
            qd_buf_printf(&out, ", \"state\": ");
            qd_buf_json_string(&out, state);
            qd_buf_printf(&out, ", \"uptime_s\": %s", is_number(up) ? up : "0");
            qd_buf_printf(&out, ", \"restarts\": %s", is_number(restarts) ? restarts : "0");
            if (conns)
                qd_buf_printf(&out, ", \"connections\": %s", is_number(conns) ? conns : "0");
            if (tcp_conns)
                qd_buf_printf(&out, ", \"tcp_connections\": %s",
                              is_number(tcp_conns) ? tcp_conns : "0");
            if (streams)
                qd_buf_printf(&out, ", \"streams\": %s", is_number(streams) ? streams : "0");
            if (retry)
                qd_buf_printf(&out, ", \"retry\": %s", strcmp(retry, "on") == 0 ? "true" : "false");
            if (send_failures)
                qd_buf_printf(&out, ", \"send_failures\": %s",
                              is_number(send_failures) ? send_failures : "0");
            if (half_open)
                qd_buf_printf(&out, ", \"half_open\": %s", is_number(half_open) ? half_open : "0");
            if (new_conns)
                qd_buf_printf(&out, ", \"new_conns_s\": %s", is_number(new_conns) ? new_conns : "0");
            if (retries)
                qd_buf_printf(&out, ", \"retries_sent\": %s", is_number(retries) ? retries : "0");
            if (drops)
                qd_buf_printf(&out, ", \"initials_dropped\": %s", is_number(drops) ? drops : "0");
            if (udp_errs)
                qd_buf_printf(&out, ", \"udp_send_errors\": %s", is_number(udp_errs) ? udp_errs : "0");
            if (emsgsize)
                qd_buf_printf(&out, ", \"udp_emsgsize\": %s", is_number(emsgsize) ? emsgsize : "0");
            for (size_t k = 0; k < sizeof(closed_keys) / sizeof(closed_keys[0]); k++) {
                const char *v = get(f, n, closed_keys[k]);
                if (v)
                    qd_buf_printf(&out, ", \"%s\": %s", closed_keys[k], is_number(v) ? v : "0");
            }
            if (next && is_number(next))
                qd_buf_printf(&out, ", \"next_start_s\": %s", next);
            if (gen && is_number(gen))
                qd_buf_printf(&out, ", \"generation\": %s", gen);
            qd_buf_printf(&out, "}");
        } else {
            char up_text[32], state_text[160];
            uptime(up, up_text, sizeof(up_text));
            if (next)
                snprintf(state_text, sizeof(state_text), "%s(%ss)", state, next);
            else if (retry && strcmp(retry, "on") == 0)
                snprintf(state_text, sizeof(state_text), "%s+retry", state);
            else
                snprintf(state_text, sizeof(state_text), "%s", state);
            qd_buf_printf(&out, "%-9s %-8s %-8s %-10s %-8s %-8s %-11s %-6s %-7s %-9s %s\n", role,
                          has_inst ? inst : "-", pid && strcmp(pid, "0") ? pid : "-", state_text,
                          strcmp(pid ? pid : "0", "0") ? up_text : "-", restarts ? restarts : "0",
                          conns ? conns : "-", tcp_conns ? tcp_conns : "-",
                          new_conns ? new_conns : "-", half_open ? half_open : "-",
                          gen ? gen : "-");
        }
        first = false;
    }
    if (json)
        qd_buf_printf(&out, "\n], \"generations\": [%s\n]}\n", qd_buf_str(&gens));
    else if (gens.len > 0)
        qd_buf_printf(&out, "\n%-10s %-9s %-8s %-11s %-6s %s\n%s", "GENERATION", "PHASE",
                      "WORKERS", "CONNECTIONS", "TCP", "STREAMS", qd_buf_str(&gens));
    fputs(qd_buf_str(&out), stdout);
    qd_buf_release(&out);
    qd_buf_release(&gens);
    return 0;
}

/* is_number_n - |len| characters, all digits */
static bool is_number_n(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

int quicctl_conns(quicctl *q, bool json)
{
    static qd_ipc_msg reply;
    static char text[QD_IPC_MAX_BODY];
    uint32_t status = 1;
    int fd = quicctl_connect(q, false);
    int n = 0;

    if (quicctl_request(fd, QD_MSG_CTL_CONNS, &reply, 5000) < 0)
        quicctl_die("no answer from quicd");
    qd_ipc_get_u32(&reply, QD_F_STATUS, &status);
    if (qd_ipc_get_str(&reply, QD_F_TEXT, text, sizeof(text)) < 0 || status != 0)
        quicctl_die("quicd answered with an error: %s", text);
    if (json)
        printf("{\"connections\": [");
    else
        printf("%-6s %-18s %-8s %-40s %7s %7s %12s %12s %9s %s\n", "WORKER", "ID", "PROTO",
               "PEER", "AGE_S", "STREAMS", "BYTES_IN", "BYTES_OUT", "SRTT_MS", "FLAGS");
    /* Lines of key=value pairs from the master; "worker=N more=M" and
       "unanswered=N" lines are notes. */
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (strstr(line, " id=") == NULL) {
            if (!json)
                printf("# %s\n", line);
            continue;
        }
        if (json) {
            printf("%s\n  {", n ? "," : "");
            bool first = true;
            for (char *f = line; *f;) {
                char *sp = strchr(f, ' ');
                size_t kvlen = sp ? (size_t)(sp - f) : strlen(f);
                char *eq = memchr(f, '=', kvlen);
                if (eq != NULL) {
                    size_t klen = (size_t)(eq - f), vlen = kvlen - klen - 1;
                    printf("%s\"%.*s\": ", first ? "" : ", ", (int)klen, f);
                    if (is_number_n(eq + 1, vlen))
                        printf("%.*s", (int)vlen, eq + 1);
                    else
                        printf("\"%.*s\"", (int)vlen, eq + 1); /* CIDs and addresses: no quotes */
                    first = false;
                }
                f += kvlen;
                while (*f == ' ')
                    f++;
            }
            printf("}");
        } else {
            char id[48] = "", peer[72] = "", proto[24] = "h3";
            const char *p = strstr(line, " protocol=");
            unsigned w = 0, st = 0, hs = 0, res = 0, early = 0, mig = 0;
            unsigned long long age = 0, bin = 0, bout = 0, srtt = 0;
            sscanf(line,
                   "worker=%u id=%47s peer=%71s age_s=%llu streams=%u bytes_in=%llu "
                   "bytes_out=%llu srtt_us=%llu migrations=%u handshake=%u resumed=%u "
                   "early_data=%u",
                   &w, id, peer, &age, &st, &bin, &bout, &srtt, &mig, &hs, &res, &early);
            if (p != NULL)
                sscanf(p, " protocol=%23s", proto);
            printf("%-6u %-18s %-8s %-40s %7llu %7u %12llu %12llu %9.1f %s%s%s%s\n", w, id, proto,
                   peer, age, st, bin, bout, (double)srtt / 1000.0, hs ? "" : "handshaking ",
                   res ? "resumed " : "", early ? "0rtt " : "", mig ? "migrated" : "");
        }
        n++;
    }
    if (json)
        printf("%s]}\n", n ? "\n" : "");
    close(fd);
    return 0;
}
