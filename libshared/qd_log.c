/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	qd_log - levelled logging to stderr or syslog
 * SYNOPSIS
 *	qd_log_init(), qd_log_set_level(), qd_log_level_parse(), qd_log(),
 *	qd_warn_errno(), qd_fatal(), qd_panic(), qd_log_limited()
 * DESCRIPTION
 *	Every line carries the process tag (quicd/worker[2]) and pid. In the
 *	foreground and in tests lines go to stderr as
 *	"2026-01-02T03:04:05.678Z quicd/worker[2][1234]: warning: text";
 *	in the background they go to syslog (facility daemon) with LOG_PID.
 *	Every function preserves errno (OpenBSD log.c).
 * DIAGNOSTICS
 *	None: logging never fails loudly.
 */
#include "config.h"

/* system */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/* libshared */
#include "qd_log.h"
#include "qd_time.h"

static char log_tag[64] = "quicd";
static qd_log_dest log_dest = QD_LOG_STDERR;
static qd_log_level log_threshold = QD_LOG_INFO;

static const char *const level_names[] = {
    [QD_LOG_ERR] = "err",       [QD_LOG_WARN] = "warn",   [QD_LOG_NOTICE] = "notice",
    [QD_LOG_INFO] = "info",     [QD_LOG_DEBUG] = "debug",
};

/* Prefix written before the text, Postfix style ("warning: ..."). */
static const char *const level_prefix[] = {
    [QD_LOG_ERR] = "error: ",   [QD_LOG_WARN] = "warning: ", [QD_LOG_NOTICE] = "",
    [QD_LOG_INFO] = "",         [QD_LOG_DEBUG] = "debug: ",
};

void qd_log_init(const char *role, int instance, qd_log_dest dest, qd_log_level level)
{
    int saved = errno;

    if (instance >= 0)
        snprintf(log_tag, sizeof(log_tag), "quicd/%s[%d]", role, instance);
    else
        snprintf(log_tag, sizeof(log_tag), "quicd/%s", role);
    if (log_dest == QD_LOG_SYSLOG)
        closelog();
    log_dest = dest;
    log_threshold = level;
    if (dest == QD_LOG_SYSLOG)
        openlog(log_tag, LOG_PID | LOG_NDELAY, LOG_DAEMON);
    errno = saved;
}

void qd_log_set_level(qd_log_level level)
{
    log_threshold = level;
}

qd_log_level qd_log_get_level(void)
{
    return log_threshold;
}

qd_log_dest qd_log_get_dest(void)
{
    return log_dest;
}

int qd_log_level_parse(const char *s, qd_log_level *out)
{
    for (int i = QD_LOG_ERR; i <= QD_LOG_DEBUG; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (qd_log_level)i;
            return 0;
        }
    }
    return -1;
}

const char *qd_log_level_name(qd_log_level level)
{
    if (level < QD_LOG_ERR || level > QD_LOG_DEBUG)
        return "?";
    return level_names[level];
}

void qd_vlog(qd_log_level level, const char *fmt, va_list ap)
{
    int saved = errno;
    char text[2048];

    if (level > log_threshold)
        goto out;
    vsnprintf(text, sizeof(text), fmt, ap);
    if (log_dest == QD_LOG_SYSLOG) {
        syslog((int)level, "%s%s", level_prefix[level], text);
    } else {
        struct timespec ts;
        struct tm tm;
        char stamp[32];

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
        fprintf(stderr, "%s.%03ldZ %s[%ld]: %s%s\n", stamp, ts.tv_nsec / 1000000L, log_tag,
                (long)getpid(), level_prefix[level], text);
    }
out:
    errno = saved;
}

void qd_log(qd_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    qd_vlog(level, fmt, ap);
    va_end(ap);
}

void qd_warn_errno(const char *fmt, ...)
{
    int saved = errno;
    char text[1536];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    qd_log(QD_LOG_WARN, "%s: %s", text, strerror(saved));
    errno = saved;
}

void qd_fatal(const char *fmt, ...)
{
    char text[1536];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    qd_log(QD_LOG_ERR, "fatal: %s", text);
    exit(1);
}

void qd_panic(const char *fmt, ...)
{
    char text[1536];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    qd_log(QD_LOG_ERR, "panic: %s", text);
    abort();
}

void qd_log_limited(qd_log_limit *lim, qd_log_level level, const char *fmt, ...)
{
    int saved = errno;
    uint64_t now = qd_time_mono_ms();
    va_list ap;

    if (now - lim->window_start_ms >= 1000) {
        if (lim->suppressed > 0)
            qd_log(level, "%u similar messages suppressed", lim->suppressed);
        lim->window_start_ms = now;
        lim->emitted = 0;
        lim->suppressed = 0;
    }
    if (lim->emitted >= QD_LOG_LIMIT_BURST) {
        lim->suppressed++;
        errno = saved;
        return;
    }
    lim->emitted++;
    va_start(ap, fmt);
    qd_vlog(level, fmt, ap);
    va_end(ap);
    errno = saved;
}
