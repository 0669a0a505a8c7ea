/* SPDX-License-Identifier: MIT */
#ifndef QD_UV_H
#define QD_UV_H

#include <uv.h>

/*
 * Descriptor watchers whose memory outlives their close. libuv finishes a
 * close on a later loop iteration, so an embedded uv_poll_t cannot be
 * initialised again right after uv_close. These are heap objects freed by
 * their own close callback, which makes "close the old channel, watch the
 * new one" safe in one step.
 */

/*
 * qd_uv_watch starts watching |fd| (borrowed: closing the watcher does not
 * close it) for |events| with |cb|; handle->data is set to |data|. Returns
 * the watcher; dies on allocation failure; returns NULL (logged) if libuv
 * refuses the descriptor.
 */
uv_poll_t *qd_uv_watch(uv_loop_t *loop, int fd, int events, uv_poll_cb cb, void *data);

/* qd_uv_unwatch stops and frees |*p| (NULL-safe) and sets |*p| to NULL. */
void qd_uv_unwatch(uv_poll_t **p);

#endif /* QD_UV_H */
