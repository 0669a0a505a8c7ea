/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	app_log - the access log
 * SYNOPSIS
 *	app_req_log()
 * DESCRIPTION
 *	One line per answered request (format in quicd.conf(5)), written with
 *	one write(2) to the O_APPEND descriptor the master passed
 *	(QD_MSG_LOG_FD). Method and path are escaped (%XX for quotes,
 *	backslashes, controls and non-ASCII).
 * DIAGNOSTICS
 *	A failed write is logged (rate-limited); the request is not affected.
 */
#include "config.h"

/* system */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* libshared */
#include "qd_buf.h"
#include "qd_log.h"

/* local */
#include "app.h"

/* log_escape - |s| for a quoted log field: '"', '\\', controls, non-ASCII as %XX */
static void log_escape(qd_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '\\' || *p == '%') {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            qd_buf_append(b, e, 3);
        } else {
            qd_buf_append(b, (const char *)p, 1);
        }
    }
}

void app_req_log(app_req *r)
{
    static qd_buf line;
    int fd = r->w->a->access_fd;
    struct timespec now;
    char when[40];

    if (r->is_logged || fd < 0 || !r->is_head_sent)
        return;
    r->is_logged = true;
    clock_gettime(CLOCK_REALTIME, &now);
    app_http_rfc3339(&now, when, sizeof(when));
    qd_buf_reset(&line);
    qd_buf_printf(&line, "%s %s \"", when, r->peer != NULL ? r->peer : "-");
    log_escape(&line, r->method != NULL ? r->method : "-");
    qd_buf_append(&line, " ", 1);
    log_escape(&line, r->path != NULL ? r->path : "-");
    qd_buf_printf(&line, "\" %u %" PRIu64 " %.3f %s %" PRIu64 "%s\n", r->status, r->bytes_out,
                  (double)(uv_hrtime() - r->start_ns) / 1e6, r->conn_id, r->conn_stream,
                  r->is_cancelled ? " cancelled" : "");
    if (write(fd, line.data, line.len) < 0) {
        static qd_log_limit lim;
        qd_log_limited(&lim, QD_LOG_WARN, "access_log: %s", strerror(errno));
    }
}
