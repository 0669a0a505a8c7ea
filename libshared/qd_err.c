/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	qd_err - names of libshared error codes
 * SYNOPSIS
 *	qd_strerror()
 */
#include "config.h"

/* libshared */
#include "qd_err.h"

const char *qd_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
    case QD_ERR_INVAL:
        return "malformed input";
    case QD_ERR_TRUNC:
        return "truncated input";
    case QD_ERR_TOOBIG:
        return "input too large";
    case QD_ERR_UNKNOWN:
        return "unknown type";
    case QD_ERR_IO:
        return "system error";
    case QD_ERR_CONF:
        return "configuration error";
    case QD_ERR_NOTFOUND:
        return "not found";
    case QD_ERR_FDS:
        return "unexpected descriptors";
    case QD_ERR_AGAIN:
        return "would block";
    case QD_ERR_EOF:
        return "channel closed";
    case QD_ERR_NOSPACE:
        return "buffer too small";
    default:
        return "unknown error";
    }
}
