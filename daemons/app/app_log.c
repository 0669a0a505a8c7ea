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
 *	backslashes, controls and non-ASCII); the HTTP version comes from the
 *	request's F_PROTO (HTTP/3 when the worker sent none).
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

void app_req_log(app_req *r)
{
    static qd_buf line;
    int fd = r->w->a->access_fd;
    struct timespec now;

    if (r->is_logged || fd < 0 || !r->is_head_sent)
        return;
    r->is_logged = true;
    clock_gettime(CLOCK_REALTIME, &now);
    qd_http_log_line(&line, &now, r->peer, r->method, r->path, r->proto, r->status, r->bytes_out,
                     (double)(uv_hrtime() - r->start_ns) / 1e6, r->conn_id, r->conn_stream, NULL,
                     r->is_cancelled);
    if (write(fd, line.data, line.len) < 0) {
        static qd_log_limit lim;
        qd_log_limited(&lim, QD_LOG_WARN, "access_log: %s", strerror(errno));
    }
}
