/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	qd_uv - heap-allocated descriptor watchers
 * SYNOPSIS
 *	qd_uv_watch(), qd_uv_unwatch()
 * DESCRIPTION
 *	See qd_uv.h: the watcher owns only its own memory, never the fd.
 */
#include "config.h"

/* system */
#include <stdlib.h>

/* libraries */
#include <uv.h>

/* libshared */
#include "qd_alloc.h"
#include "qd_log.h"
#include "qd_uv.h"

/* on_closed - the close finished: free the memory */
static void on_closed(uv_handle_t *h)
{
    free(h);
}

uv_poll_t *qd_uv_watch(uv_loop_t *loop, int fd, int events, uv_poll_cb cb, void *data)
{
    uv_poll_t *p = qd_xmalloc(sizeof(*p));
    int rv = uv_poll_init(loop, p, fd);

    if (rv < 0) {
        qd_warn("cannot watch descriptor %d: %s", fd, uv_strerror(rv));
        free(p);
        return NULL;
    }
    p->data = data;
    uv_poll_start(p, events, cb);
    return p;
}

void qd_uv_unwatch(uv_poll_t **p)
{
    if (*p == NULL)
        return;
    uv_poll_stop(*p);
    uv_close((uv_handle_t *)*p, on_closed);
    *p = NULL;
}
