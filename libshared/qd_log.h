/* SPDX-License-Identifier: MIT */
#ifndef QD_LOG_H
#define QD_LOG_H

#include <stdarg.h>
#include <stdint.h>

/* Severities, most severe first; numerically equal to syslog's. */
typedef enum qd_log_level {
    QD_LOG_ERR = 3,
    QD_LOG_WARN = 4,
    QD_LOG_NOTICE = 5,
    QD_LOG_INFO = 6,
    QD_LOG_DEBUG = 7,
} qd_log_level;

typedef enum qd_log_dest {
    QD_LOG_STDERR,
    QD_LOG_SYSLOG,
} qd_log_dest;

/*
 * qd_log_init sets the tag "quicd/|role|" or, when |instance| >= 0,
 * "quicd/|role|[|instance|]", the destination and the threshold. May be
 * called again (for example after daemonizing or on reload).
 */
void qd_log_init(const char *role, int instance, qd_log_dest dest, qd_log_level level);

/* qd_log_set_level changes the threshold. */
void qd_log_set_level(qd_log_level level);
qd_log_level qd_log_get_level(void);
qd_log_dest qd_log_get_dest(void);

/*
 * qd_log_level_parse maps "err", "warn", "notice", "info", "debug" to a
 * level. Returns 0, or -1 when |s| names no level.
 */
int qd_log_level_parse(const char *s, qd_log_level *out);
const char *qd_log_level_name(qd_log_level level);

/*
 * Logging functions. All preserve errno. qd_warn_errno appends
 * ": strerror(errno)". qd_fatal logs and exits with status 1; qd_panic logs
 * and aborts, and is for our own broken invariants only.
 */
void qd_log(qd_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void qd_vlog(qd_log_level level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
#define qd_err(...) qd_log(QD_LOG_ERR, __VA_ARGS__)
#define qd_warn(...) qd_log(QD_LOG_WARN, __VA_ARGS__)
#define qd_notice(...) qd_log(QD_LOG_NOTICE, __VA_ARGS__)
#define qd_info(...) qd_log(QD_LOG_INFO, __VA_ARGS__)
#define qd_debug(...) qd_log(QD_LOG_DEBUG, __VA_ARGS__)
void qd_warn_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void qd_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void qd_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * A rate limiter for warnings caused by peers (packets, messages): at most
 * |burst| lines per second; the next line after a quiet second reports how
 * many were suppressed. Keep one static qd_log_limit per call site.
 */
typedef struct qd_log_limit {
    uint64_t window_start_ms;
    uint32_t emitted;
    uint32_t suppressed;
} qd_log_limit;

#define QD_LOG_LIMIT_BURST 10

void qd_log_limited(qd_log_limit *lim, qd_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* QD_LOG_H */
