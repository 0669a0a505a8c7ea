/* SPDX-License-Identifier: MIT */
#ifndef QD_APP_H
#define QD_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include <uv.h>

#include "qd_buf.h"
#include "qd_chan.h"
#include "qd_http.h"
#include "qd_child.h"
#include "qd_ipc.h"

/*
 * The app process: requests from the workers (app_req.c), the static file
 * handler (app_static.c) and its helpers (app_path.c, app_mime.c,
 * libshared/qd_http.c). See app.c for the life of the process and app_req.c for the
 * worker<->app protocol as the app implements it.
 */

#define APP_MAX_WORKERS 256
/* Concurrent requests per worker channel that still owe a response. */
#define APP_MAX_REQUESTS 10000
/* Answered requests whose body the worker is still sending, per channel. */
#define APP_MAX_DRAINING 1024
/* Body chunks wait while a worker channel has this many bytes queued. */
#define APP_CHAN_SOFT_LIMIT (1024 * 1024)
/* Longest decoded request path, and the buffer size for it. */
#define APP_PATH_MAX 4096

typedef struct app app;
typedef struct app_worker app_worker;
typedef struct app_req app_req;

/* A circular intrusive list (sentinel head). */
typedef struct app_link {
    struct app_link *prev, *next;
} app_link;

/* Where a request sits besides the hash table. */
typedef enum app_queue {
    APP_Q_NONE,
    APP_Q_BLOCKED,  /* body output waits for the channel to drain */
    APP_Q_DRAINING, /* answered; the request body has not ended yet */
} app_queue;

struct app_req {
    app_req *hnext; /* hash chain; free list */
    app_link qlink; /* in w->blocked or w->draining, per |queue| */
    app_queue queue;
    app_worker *w;
    uint64_t stream;
    uint32_t req_flags; /* QD_REQ_F_* of the head */
    uint64_t body_len;  /* request body bytes received */
    bool is_req_done;   /* the request body ended (QD_REQ_F_END) */
    bool is_handled;    /* a handler ran or an early error answered it */
    bool is_head_sent;  /* the handler committed its response head */
    bool is_head_queued; /* ... and the channel took it (else it waits in |resp|) */
    bool is_resp_done; /* the final response message was sent */
    unsigned status;

    /* The response head, the request's own until the channel takes it:
     * fields as u16 length + name\0value; flags, and a descriptor (ours,
     * a duplicate) with offset and length while it waits. */
    uint8_t *resp;
    size_t resp_len, resp_cap, resp_fields;
    uint32_t resp_flags;
    int resp_fd;
    uint64_t resp_off, resp_flen;

    /* The head, copied: strings NUL-terminated, headers as name\0value\0. */
    char *head;
    size_t head_len, head_cap;
    size_t header_off; /* first header pair in |head| */
    const char *method, *path, *authority, *scheme, *peer;

    /* Response body output: out[out_off, out_len) not yet sent. */
    uint8_t *out;
    size_t out_off, out_len, out_cap;
    bool is_out_end;  /* the producer is done; END goes with the last chunk */
    uint32_t unacked; /* sent, not yet credited by the worker */

    /* For the access log. */
    uint64_t conn_stream;   /* F_QUIC_STREAM */
    char conn_id[48];       /* F_CONN_ID, hex */
    char proto[16];         /* F_PROTO (QD_PROTO_*), "h3" when absent or too long */
    uint64_t start_ns;      /* monotonic, at the head */
    uint64_t bytes_out;     /* body bytes in the response */
    bool is_logged;
    bool is_cancelled;      /* the client reset the stream */

    /* API handlers: a kept request body and a ticking stream. */
    bool is_keep_body;      /* store the body in |body| (POST /api/echo) */
    qd_buf body;            /* initialised lazily, released with the request */
    bool has_body_buf;
    uv_timer_t *tick;       /* /events and /stream; closed with the request */
    uint64_t tick_count;
};

struct app_worker {
    app *a;
    uint32_t index;
    qd_chan *ch; /* NULL when not connected */
    app_req **buckets;
    uint32_t bucket_count; /* power of two */
    uint32_t req_count;    /* everything in the table */
    uint32_t active_count; /* requests that still owe a response */
    app_link blocked, draining;
    uint32_t draining_count;
};

struct app {
    qd_child child;
    app_worker workers[APP_MAX_WORKERS];
    uint32_t connected;
    int root_fd;     /* O_PATH directory files are opened beneath */
    char *root_path; /* document_root it was opened from */
    bool is_chrooted;
    uint32_t in_flight;       /* requests that still owe a response */
    uint64_t status_count[6]; /* [1]..[5]: 1xx..5xx responses; [0] others */
    uint64_t protocol_errors; /* worker messages logged and dropped */
    uint64_t send_failures;   /* messages a worker channel refused (answers lost) */
    app_req *free_reqs;       /* recycled requests, linked by hnext */
    uint32_t free_count;
    uv_timer_t stop_timer;
    int access_fd; /* access_log, from the master (QD_MSG_LOG_FD); -1: off */
};

/* --- app_req.c: requests from the workers, responses to them ------------ */

/* app_req_worker_init prepares worker slot |index| of |a| (not connected). */
void app_req_worker_init(app *a, app_worker *w, uint32_t index);

/* app_req_message handles one message from worker |w| (borrowed). */
void app_req_message(app_worker *w, qd_ipc_msg *m);

/* app_req_drained resumes output held back while |w|'s channel was full. */
void app_req_drained(app_worker *w);

/*
 * app_req_end_streams ends |w|'s endless responses (/events, /stream) with
 * their last chunk, for a graceful stop.
 */
void app_req_end_streams(app_worker *w);

/* app_req_drop_all forgets every request of |w| (its channel is gone). */
void app_req_drop_all(app_worker *w);

/*
 * Request accessors. app_req_header returns the value of the first header
 * |name| (lowercase), or NULL. app_req_is_head tells whether the method is
 * HEAD (responses then carry headers only).
 */
const char *app_req_header(const app_req *r, const char *name);
bool app_req_is_head(const app_req *r);

/*
 * Responses. A handler calls app_resp_start, then app_resp_header for each
 * header, then app_resp_send_head once; a body that is not a descriptor
 * follows with app_resp_write. None of these frees |r|.
 *
 * app_resp_send_head sends the head with |flags| (QD_RESP_F_END: no body).
 * With |fd| >= 0 (borrowed: the caller closes it after the call) the body
 * is |len| bytes of |fd| at |off|, which the worker reads itself; the
 * response is then complete, and |flags| must be 0.
 *
 * app_resp_write queues |len| bytes of body (copied) and sends what the
 * flow-control window allows; |is_end| marks the last call.
 *
 * app_resp_error answers with a short text body "<status> <reason>\n"
 * (headers only for HEAD), and one extra header |name|: |value| unless
 * |name| is NULL.
 */
void app_resp_start(app_req *r, unsigned status);
void app_resp_header(app_req *r, const char *name, const char *value);
void app_resp_send_head(app_req *r, uint32_t flags, int fd, uint64_t off, uint64_t len);
void app_resp_write(app_req *r, const void *p, size_t len, bool is_end);
void app_resp_error(app_req *r, unsigned status, const char *name, const char *value);

/* app_exit_if_idle ends a graceful stop once nothing is in flight. */
void app_exit_if_idle(app *a);

/*
 * For app_resp.c: app_req_queue moves |r| to the blocked or draining list
 * (or neither); app_req_resp_done marks its final response message sent
 * (or never to be sent) and logs it; app_req_send_failed counts and logs a
 * message the channel refused. app_resp_pump sends the head if it waits,
 * then body chunks while the window, the channel and the data allow.
 */
void app_req_queue(app_req *r, app_queue q);
void app_req_resp_done(app_req *r);
void app_req_send_failed(app_worker *w, const char *what, uint64_t stream, int rv);
void app_resp_pump(app_req *r);

/* --- app_log.c --------------------------------------------------------------- */

/* app_req_log writes |r|'s access log line (once) when the log is on. */
void app_req_log(app_req *r);

/* --- app_api.c ------------------------------------------------------------ */

/*
 * app_api_match tells whether |r| is for a built-in route (api = yes):
 * /api/time, /api/echo, /events, /stream (query ignored).
 * app_api_wants_body tells whether the route keeps the request body.
 * app_api_handle answers it once the request body has ended.
 * app_api_release stops whatever the request still runs (its timer).
 */
bool app_api_match(const app_req *r);
bool app_api_wants_body(const app_req *r);
void app_api_handle(app_req *r);
void app_api_release(app_req *r);
/* app_api_finish ends an open-ended response (/events, /stream) cleanly. */
void app_api_finish(app_req *r);

/* app_hints_send sends the configured 103 Early Hints for |r|'s path, if any. */
void app_hints_send(app_req *r);

/* --- app_static.c -------------------------------------------------------- */

/* app_static_handle answers |r| (GET or HEAD) from the document root. */
void app_static_handle(app_req *r);

/* --- app_path.c ---------------------------------------------------------- */

#define APP_PATH_EBAD -1     /* malformed: 400 */
#define APP_PATH_EDOT -2     /* a "." or ".." segment: 404 */
#define APP_PATH_ETOOLONG -3 /* 414 */

/*
 * app_path_decode turns the raw :path |raw| (hostile) into a path relative
 * to the document root in |out| (|cap| bytes): the query is cut off, %XX
 * escapes are decoded once (%00 and bad escapes are errors; a decoded '/'
 * separates segments), empty segments are merged, "." and ".." segments
 * are refused, and "index.html" is appended when the path ends in '/'
 * (then |*is_index| is true). The result never starts with '/' and is
 * never empty. Returns 0 or APP_PATH_E*.
 */
int app_path_decode(const char *raw, char *out, size_t cap, bool *is_index);

/*
 * app_path_open opens |rel| (from app_path_decode) read-only beneath the
 * directory |root_fd|: openat2 with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
 * so symlinks that stay inside the root work and one that leaves it fails
 * with EXDEV; without openat2 (ENOSYS) it falls back to app_path_open_walk.
 * Fills |*st|. Returns the descriptor (O_CLOEXEC), or -errno.
 */
int app_path_open(int root_fd, const char *rel, struct stat *st);

/*
 * app_path_open_walk opens |rel| one component at a time with O_NOFOLLOW
 * (no symlinks at all: ELOOP). Same contract as app_path_open.
 */
int app_path_open_walk(int root_fd, const char *rel, struct stat *st);

/*
 * app_path_encode writes "/" |rel| into |out| (|cap| bytes, always
 * NUL-terminated) with every byte that is not safe in a URL path
 * %-encoded. Returns 0, or -1 (and "") when it does not fit.
 */
int app_path_encode(const char *rel, char *out, size_t cap);

/* --- app_mime.c ---------------------------------------------------------- */

/*
 * app_mime_type returns the content type for the file name |path| by its
 * extension (case-insensitive); text types carry "; charset=utf-8".
 * Unknown: "application/octet-stream".
 */
const char *app_mime_type(const char *path);

#endif /* QD_APP_H */
