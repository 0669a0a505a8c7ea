/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	quicctl_metrics - quicctl metrics: the Prometheus text, over the control socket
 * SYNOPSIS
 *	quicctl_metrics(q)
 * DESCRIPTION
 *	Asks the master (QD_MSG_CTL_METRICS); the stats daemon answers on the
 *	same connection with the text /metrics serves, in as many
 *	QD_MSG_CTL_REPLY messages as it takes (QD_CTL_F_MORE on all but the
 *	last). Works with metrics_listen off.
 * DIAGNOSTICS
 *	Exit 1 with one line on stderr when quicd does not answer or the
 *	stats daemon is not running.
 */
#include "config.h"

/* system */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* libshared */
#include "qd_err.h"
#include "qd_ipc.h"

/* local */
#include "quicctl.h"

int quicctl_metrics(quicctl *q)
{
    static qd_ipc_msg reply;
    const uint8_t *text;
    size_t len;
    uint32_t status = 1, flags;
    int fd = quicctl_connect(q, false);

    quicctl_request(fd, QD_MSG_CTL_METRICS, &reply, 10000);
    for (;;) {
        qd_ipc_get_u32(&reply, QD_F_STATUS, &status);
        if (qd_ipc_get_bytes(&reply, QD_F_TEXT, &text, &len) < 0)
            text = (const uint8_t *)"", len = 0;
        if (status != 0) {
            fprintf(stderr, "quicctl: %.*s\n", (int)len, (const char *)text);
            return 1;
        }
        fwrite(text, 1, len, stdout);
        flags = 0;
        qd_ipc_get_u32(&reply, QD_F_FLAGS, &flags);
        if (!(flags & QD_CTL_F_MORE))
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 10000) <= 0)
            quicctl_die("the metrics stopped coming");
        int rv = qd_ipc_recv(fd, &reply);
        if (rv < 0 || reply.type != QD_MSG_CTL_REPLY)
            quicctl_die("bad answer from quicd: %s", rv < 0 ? qd_strerror(rv) : "not a reply");
    }
    close(fd);
    return fflush(stdout) == 0 ? 0 : 1;
}
