/* SPDX-License-Identifier: MIT */
#ifndef QD_CID_H
#define QD_CID_H

#include <stddef.h>
#include <stdint.h>

/*
 * Server connection IDs. Every CID a worker mints is QD_CID_LEN bytes:
 *
 *   byte 0        bit 7: the parity of the worker's generation (informative);
 *                 bits 0..6: the tag, one random value for the life of the
 *                 master (QD_F_CID_TAG), so that the steering program can
 *                 tell our CIDs from a client's random ones in long headers
 *                 (all but 1 in 128 of them)
 *   byte 1        the worker id that owns the connection: unique among the
 *                 workers of every live generation, and the index of that
 *                 worker's socket in each reuseport group
 *   bytes 2..17   random (CSPRNG)
 *
 * The listener's classic-BPF reuseport program (listener_bpf.c) reads the
 * worker byte of the DCID of short-header packets (packet offset
 * QD_CID_WORKER_PKT_OFFSET) and of long-header packets whose DCID is ours,
 * and returns it as the index of the worker's socket in the group.
 */
#define QD_CID_LEN 18
#define QD_CID_WORKER_BYTE 1
#define QD_CID_WORKER_PKT_OFFSET (1 + QD_CID_WORKER_BYTE)
#define QD_CID_TAG_MASK 0x7f

/*
 * qd_cid_mint fills |cid| (QD_CID_LEN bytes) with a new CID owned by
 * |worker| (0..255) in generation |gen| with |tag| (its low 7 bits).
 * Returns 0, or -1 if the kernel's random source failed.
 */
int qd_cid_mint(uint8_t *cid, unsigned worker, uint32_t gen, uint32_t tag);

/*
 * qd_cid_worker returns the worker that minted |cid| (|len| bytes), or -1
 * when |len| is not QD_CID_LEN (then the CID was chosen by a client).
 */
int qd_cid_worker(const uint8_t *cid, size_t len);

/* qd_random fills |buf| with |len| bytes from getrandom(2); 0 or -1. */
int qd_random(void *buf, size_t len);

#endif /* QD_CID_H */
