/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	listener_bpf - steer QUIC packets to the worker that owns the CID
 * SYNOPSIS
 *	listener_bpf_attach()
 * DESCRIPTION
 *	A classic-BPF SO_REUSEPORT program (SO_ATTACH_REUSEPORT_CBPF) for one
 *	group of UDP sockets bound to the same address, one socket per worker
 *	in worker order. The kernel runs it with offset 0 at the first byte of
 *	the UDP payload and uses its result as the index of the socket in the
 *	group (the order the sockets were bound in); an index beyond the group
 *	makes the kernel fall back to its 4-tuple hash.
 *
 *	Long-header packets (Initial, 0-RTT, Handshake, Retry) carry a
 *	client-chosen DCID at first, so they are hashed. Short-header packets
 *	carry one of our CIDs, whose byte QD_CID_WORKER_BYTE is the worker
 *	(qd_cid.h). Runt packets are hashed too. A worker id beyond the group
 *	(a CID from before a change of `workers`) is hashed as well; the worker
 *	that gets it forwards or drops it (it is not its CID).
 * DIAGNOSTICS
 *	Returns -1 with the reason in |err| when the kernel refuses.
 */
#include "config.h"

/* system */
#include <errno.h>
#include <linux/filter.h>
#include <string.h>
#include <sys/socket.h>

/* libshared */
#include "qd_cid.h"

/* local */
#include "listener.h"

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif

#define HASH_IT 0xffffffffu /* an invalid index: the kernel hashes */

int listener_bpf_attach(int fd, int workers, qd_buf *err)
{
    struct sock_filter code[] = {
        /* A = payload length; too short for a short header with our CID: hash */
        BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 1 + QD_CID_LEN, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, HASH_IT),
        /* A = first byte; long header (0x80 set): hash */
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x80, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, HASH_IT),
        /* A = the worker byte of the DCID; beyond the group: hash */
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, QD_CID_WORKER_PKT_OFFSET),
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, (uint32_t)workers, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, HASH_IT),
        BPF_STMT(BPF_RET | BPF_A, 0),
    };
    struct sock_fprog prog = {.len = sizeof(code) / sizeof(code[0]), .filter = code};

    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) < 0) {
        qd_buf_printf(err, "cannot attach the CID steering program: %s", strerror(errno));
        return -1;
    }
    return 0;
}
