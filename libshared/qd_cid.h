/* SPDX-License-Identifier: MIT */
#ifndef QD_CID_H
#define QD_CID_H

#include <stddef.h>
#include <stdint.h>

/*
 * Server connection IDs. Every CID a worker mints is QD_CID_LEN bytes:
 *
 *   byte 0        generation bits (bit 7: the reload generation's parity,
 *                 for the zero-loss reload that a later change builds on;
 *                 the other bits random)
 *   byte 1        the worker instance that owns the connection
 *   bytes 2..17   random (CSPRNG)
 *
 * The listener's classic-BPF reuseport program reads byte 1 of the DCID of
 * short-header packets (packet offset QD_CID_WORKER_PKT_OFFSET) and returns
 * it as the index of the worker's socket in the group.
 */
#define QD_CID_LEN 18
#define QD_CID_WORKER_BYTE 1
#define QD_CID_WORKER_PKT_OFFSET (1 + QD_CID_WORKER_BYTE)

/*
 * qd_cid_mint fills |cid| (QD_CID_LEN bytes) with a new CID owned by
 * |worker| (0..255) in generation |gen|. Returns 0, or -1 if the kernel's
 * random source failed.
 */
int qd_cid_mint(uint8_t *cid, unsigned worker, uint32_t gen);

/*
 * qd_cid_worker returns the worker that minted |cid| (|len| bytes), or -1
 * when |len| is not QD_CID_LEN (then the CID was chosen by a client).
 */
int qd_cid_worker(const uint8_t *cid, size_t len);

/* qd_random fills |buf| with |len| bytes from getrandom(2); 0 or -1. */
int qd_random(void *buf, size_t len);

#endif /* QD_CID_H */
