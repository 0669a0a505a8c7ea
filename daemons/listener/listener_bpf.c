/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	listener_bpf - steer packets and connections to the right worker
 * SYNOPSIS
 *	listener_bpf_udp(), listener_bpf_tcp(), listener_hash()
 * DESCRIPTION
 *	Classic-BPF SO_REUSEPORT programs (SO_ATTACH_REUSEPORT_CBPF), one per
 *	reuseport group. The kernel runs a program with offset 0 at the first
 *	byte of the UDP payload (of the TCP payload for a SYN: nothing) and
 *	uses its result as the index of the socket in the group, which for us
 *	is the worker id (listener_sock.c binds slot i i-th and never closes
 *	it). Every program returns a socket that a live worker reads, never an
 *	index the kernel would replace by its own hash over every socket,
 *	draining and unused ones included.
 *
 *	UDP: a short-header packet whose DCID carries our tag (qd_cid.h) goes
 *	to the worker its worker byte names, if that worker is live on this
 *	address (of any generation, draining ones included: their connections
 *	keep reaching them). So does a long-header packet whose DCID is 18
 *	bytes with our tag (a client's Handshake, or its Initial after our
 *	first flight or a Retry). Anything else, a client's first Initial and
 *	0-RTT packets above all, goes to one of the workers taking new
 *	connections, chosen from the first four bytes of the DCID, so that
 *	every packet of one client's first flight reaches the same worker.
 *	Runts go to the first of them.
 *
 *	TCP: a SYN goes to a random worker taking new connections; the others'
 *	accept queues only empty.
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

#define MAX_INSNS (64 + 4 * LISTENER_MAX_SLOTS)
#define HASH_OFFSET 6 /* a long header's DCID starts here */

/* A small assembler: conditional jumps only ever skip one instruction, far
 * jumps are BPF_JA to a label resolved at the end. */
enum { L_HASH, L_LIVE, L_SHORT, L_RUNT, L_COUNT };

typedef struct prog {
    struct sock_filter code[MAX_INSNS];
    int len;
    int label[L_COUNT];
    int fix_at[16], fix_to[16], nfix;
} prog;

static void emit(prog *p, uint16_t code, uint8_t jt, uint8_t jf, uint32_t k)
{
    struct sock_filter f = {code, jt, jf, k};

    p->code[p->len++] = f;
}

/* if_not - continue when A <op> k holds, else jump to |label| */
static void if_not(prog *p, uint16_t op, uint32_t k, int label)
{
    emit(p, BPF_JMP | op | BPF_K, 1, 0, k);
    p->fix_at[p->nfix] = p->len;
    p->fix_to[p->nfix++] = label;
    emit(p, BPF_JMP | BPF_JA, 0, 0, 0);
}

static void jump(prog *p, int label)
{
    p->fix_at[p->nfix] = p->len;
    p->fix_to[p->nfix++] = label;
    emit(p, BPF_JMP | BPF_JA, 0, 0, 0);
}

/* table - A holds a key: return ids[i] when A == keys[i] (keys NULL: i) */
static void table(prog *p, const uint8_t *keys, const uint8_t *ids, int n)
{
    for (int i = 0; i < n; i++) {
        emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 1, keys ? keys[i] : (uint32_t)i);
        emit(p, BPF_RET | BPF_K, 0, 0, ids[i]);
    }
}

static int attach(int fd, prog *p, qd_buf *err)
{
    for (int i = 0; i < p->nfix; i++)
        p->code[p->fix_at[i]].k = (uint32_t)(p->label[p->fix_to[i]] - p->fix_at[i] - 1);
    struct sock_fprog fp = {.len = (unsigned short)p->len, .filter = p->code};
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fp, sizeof(fp)) < 0) {
        qd_buf_printf(err, "cannot attach the steering program: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int listener_bpf_udp(int fd, const uint8_t *live, int nlive, const uint8_t *cur, int ncur,
                     uint32_t tag, qd_buf *err)
{
    static prog p;

    if (ncur < 1 || ncur > LISTENER_MAX_SLOTS || nlive > LISTENER_MAX_SLOTS) {
        qd_buf_printf(err, "no worker takes new connections");
        return -1;
    }
    memset(&p, 0, sizeof(p));
    tag &= QD_CID_TAG_MASK;
    /* too short for a header with one of our CIDs: the first new-connection worker */
    emit(&p, BPF_LD | BPF_W | BPF_LEN, 0, 0, 0);
    if_not(&p, BPF_JGE, 1 + QD_CID_LEN, L_RUNT);
    emit(&p, BPF_LD | BPF_B | BPF_ABS, 0, 0, 0);
    if_not(&p, BPF_JSET, 0x80, L_SHORT);
    /* long header: DCID length at 5, the DCID from 6 */
    emit(&p, BPF_LD | BPF_B | BPF_ABS, 0, 0, 5);
    if_not(&p, BPF_JEQ, QD_CID_LEN, L_HASH);
    emit(&p, BPF_LD | BPF_B | BPF_ABS, 0, 0, 6);
    emit(&p, BPF_ALU | BPF_AND | BPF_K, 0, 0, QD_CID_TAG_MASK);
    if_not(&p, BPF_JEQ, tag, L_HASH);
    emit(&p, BPF_LD | BPF_B | BPF_ABS, 0, 0, 6 + QD_CID_WORKER_BYTE);
    jump(&p, L_LIVE);
    /* short header: the DCID from 1 */
    p.label[L_SHORT] = p.len;
    emit(&p, BPF_LD | BPF_B | BPF_ABS, 0, 0, 1);
    emit(&p, BPF_ALU | BPF_AND | BPF_K, 0, 0, QD_CID_TAG_MASK);
    if_not(&p, BPF_JEQ, tag, L_HASH);
    emit(&p, BPF_LD | BPF_B | BPF_ABS, 0, 0, QD_CID_WORKER_PKT_OFFSET);
    /* A = a worker id: its socket if it is live here */
    p.label[L_LIVE] = p.len;
    table(&p, live, live, nlive);
    /* a new connection: hash the DCID onto the workers that take them */
    p.label[L_HASH] = p.len;
    emit(&p, BPF_LD | BPF_W | BPF_ABS, 0, 0, HASH_OFFSET);
    emit(&p, BPF_ALU | BPF_MOD | BPF_K, 0, 0, (uint32_t)ncur);
    table(&p, NULL, cur, ncur);
    p.label[L_RUNT] = p.len;
    emit(&p, BPF_RET | BPF_K, 0, 0, cur[0]);
    return attach(fd, &p, err);
}

int listener_bpf_tcp(int fd, const uint8_t *cur, int ncur, qd_buf *err)
{
    static prog p;

    if (ncur < 1 || ncur > LISTENER_MAX_SLOTS) {
        qd_buf_printf(err, "no worker takes new TCP connections");
        return -1;
    }
    memset(&p, 0, sizeof(p));
    emit(&p, BPF_LD | BPF_W | BPF_ABS, 0, 0, (uint32_t)(SKF_AD_OFF + SKF_AD_RANDOM));
    emit(&p, BPF_ALU | BPF_MOD | BPF_K, 0, 0, (uint32_t)ncur);
    table(&p, NULL, cur, ncur);
    emit(&p, BPF_RET | BPF_K, 0, 0, cur[0]);
    return attach(fd, &p, err);
}

uint32_t listener_hash(const uint8_t *pkt, size_t len)
{
    if (len < HASH_OFFSET + 4)
        return 0;
    return (uint32_t)pkt[HASH_OFFSET] << 24 | (uint32_t)pkt[HASH_OFFSET + 1] << 16 |
           (uint32_t)pkt[HASH_OFFSET + 2] << 8 | pkt[HASH_OFFSET + 3];
}
