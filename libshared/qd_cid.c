/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	qd_cid - the layout of server connection IDs
 * SYNOPSIS
 *	qd_cid_mint(), qd_cid_worker(), qd_random()
 * DESCRIPTION
 *	See qd_cid.h for the layout. One byte of the CID names the worker in
 *	plain text (so a kernel BPF program can steer on it); the other 16
 *	bytes are random, so CIDs stay unguessable and unlinkable beyond
 *	"same worker".
 * DIAGNOSTICS
 *	qd_random fails only if getrandom(2) does.
 */
#include "config.h"

/* system */
#include <errno.h>
#include <sys/random.h>

/* libshared */
#include "qd_cid.h"

int qd_random(void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int qd_cid_mint(uint8_t *cid, unsigned worker, uint32_t gen, uint32_t tag)
{
    if (qd_random(cid, QD_CID_LEN) < 0)
        return -1;
    cid[0] = (uint8_t)((tag & QD_CID_TAG_MASK) | ((gen & 1) << 7));
    cid[QD_CID_WORKER_BYTE] = (uint8_t)worker;
    return 0;
}

int qd_cid_worker(const uint8_t *cid, size_t len)
{
    if (len != QD_CID_LEN)
        return -1;
    return cid[QD_CID_WORKER_BYTE];
}
