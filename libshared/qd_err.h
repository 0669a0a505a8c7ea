/* SPDX-License-Identifier: MIT */
#ifndef QD_ERR_H
#define QD_ERR_H

/* Error codes returned by libshared decoders and parsers; all negative. */
#define QD_ERR_INVAL -1    /* malformed input */
#define QD_ERR_TRUNC -2    /* input shorter than it claims / cut short */
#define QD_ERR_TOOBIG -3   /* input longer than allowed */
#define QD_ERR_UNKNOWN -4  /* unknown message type or field */
#define QD_ERR_IO -5       /* system call failed; errno is set */
#define QD_ERR_CONF -6     /* configuration has errors (listed separately) */
#define QD_ERR_NOTFOUND -7 /* requested field or key absent */
#define QD_ERR_FDS -8      /* wrong number of descriptors */
#define QD_ERR_AGAIN -9    /* would block */
#define QD_ERR_EOF -10     /* peer closed the channel */
#define QD_ERR_NOSPACE -11 /* caller's buffer too small */

/* qd_strerror returns a static description of a QD_ERR_* code. */
const char *qd_strerror(int code);

#endif /* QD_ERR_H */
