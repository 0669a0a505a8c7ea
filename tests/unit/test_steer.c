/* SPDX-License-Identifier: MIT */
/*
 * The listener's steering programs (daemons/listener/listener_bpf.c) on
 * real reuseport groups on 127.0.0.1: which socket each kind of packet,
 * and each new TCP connection, reaches.
 *
 * The UDP group has 6 slots: an old, draining generation has worker ids 0
 * and 1, the serving one 4 and 5, and slots 2 and 3 belong to nobody.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qd_cid.h"
#include "qd_test.h"

#include "listener.h"

#define SLOTS 6
#define TAG 0x2a

static int socks[SLOTS];
static struct sockaddr_in addr;
static int client = -1;
static const uint8_t live[] = {0, 1, 4, 5}, cur[] = {4, 5};

/* group - SLOTS sockets of |type| in one reuseport group, bound in order */
static int group(int type, int *out)
{
    int one = 1;
    socklen_t len = sizeof(addr);

    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < SLOTS; i++) {
        out[i] = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (out[i] < 0 || setsockopt(out[i], SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
            bind(out[i], (struct sockaddr *)&addr, sizeof(addr)) < 0)
            return -1;
        if (i == 0 && getsockname(out[0], (struct sockaddr *)&addr, &len) < 0)
            return -1;
        if (type == SOCK_STREAM && listen(out[i], 64) < 0)
            return -1;
    }
    return 0;
}

/* arrived - the slot whose socket got the datagram just sent, or -1 */
static int arrived(void)
{
    uint8_t buf[2048];

    for (int tries = 0; tries < 100; tries++) {
        for (int i = 0; i < SLOTS; i++)
            if (recv(socks[i], buf, sizeof(buf), 0) >= 0)
                return i;
        usleep(1000);
    }
    return -1;
}

/* send_pkt - |len| bytes: the first byte |first|, then |dcid| at |at| */
static int send_pkt(uint8_t first, const uint8_t *dcid, size_t dlen, size_t at, size_t len,
                    uint8_t *pkt)
{
    memset(pkt, 0x5a, len);
    pkt[0] = first;
    if (dcid)
        memcpy(pkt + at, dcid, dlen);
    if (sendto(client, pkt, len, 0, (struct sockaddr *)&addr, sizeof(addr)) != (ssize_t)len)
        return -1;
    return arrived();
}

/* expected_new - where a new connection's packet must go */
static int expected_new(const uint8_t *pkt, size_t len)
{
    return cur[listener_hash(pkt, len) % 2];
}

static void test_udp(void)
{
    uint8_t cid[QD_CID_LEN], pkt[1200];
    qd_buf err;

    qd_buf_init(&err);
    if (group(SOCK_DGRAM, socks) < 0 ||
        (client = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0) {
        QD_FAIL("sockets: %s", strerror(errno));
        return;
    }
    QD_EXPECT_INT(listener_bpf_udp(socks[0], live, 4, cur, 2, TAG, &err), 0);

    /* short header, our CID: its worker, of either generation */
    for (unsigned w = 0; w < 6; w++) {
        qd_cid_mint(cid, w, 0, TAG);
        int got = send_pkt(0x40, cid, sizeof(cid), 1, 60, pkt);
        int want = (w == 2 || w == 3) ? expected_new(pkt, 60) : (int)w; /* no one's: new */
        if (got != want)
            QD_FAIL("short header for worker %u reached slot %d, want %d", w, got, want);
    }
    /* short header, not our tag: a worker taking new connections */
    qd_cid_mint(cid, 0, 0, TAG + 1);
    QD_EXPECT_INT(send_pkt(0x40, cid, sizeof(cid), 1, 60, pkt), expected_new(pkt, 60));
    int bad = 0, n4 = 0, n5 = 0;
    for (int i = 0; i < 200; i++) {
        /* a client's first Initial: 8-byte DCID; only 4 and 5 take it */
        uint8_t d[8];
        qd_random(d, sizeof(d));
        memset(pkt, 0, sizeof(pkt));
        pkt[0] = 0xc0;
        pkt[5] = 8;
        memcpy(pkt + 6, d, 8);
        if (sendto(client, pkt, 1200, 0, (struct sockaddr *)&addr, sizeof(addr)) != 1200)
            bad++;
        int got = arrived();
        if (got != expected_new(pkt, 1200))
            bad++;
        n4 += got == 4;
        n5 += got == 5;
    }
    if (bad > 0 || n4 < 50 || n5 < 50)
        QD_FAIL("200 first Initials: %d not where expected; %d on slot 4, %d on slot 5", bad, n4,
                n5);
    /* runts go to the first worker taking new connections */
    QD_EXPECT_INT(send_pkt(0x40, NULL, 0, 0, 5, pkt), 4);
    qd_buf_release(&err);
}

/* test_long_ours - our 18-byte CID in a long header reaches its worker */
static void test_long_ours(void)
{
    uint8_t cid[QD_CID_LEN], pkt[1200];

    for (unsigned w = 0; w < 6; w++) {
        qd_cid_mint(cid, w, 0, TAG);
        memset(pkt, 0, sizeof(pkt));
        pkt[0] = 0xe0; /* Handshake */
        pkt[5] = QD_CID_LEN;
        memcpy(pkt + 6, cid, sizeof(cid));
        if (sendto(client, pkt, sizeof(pkt), 0, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
            QD_FAIL("sendto: %s", strerror(errno));
            return;
        }
        int got = arrived();
        int want = (w == 2 || w == 3) ? expected_new(pkt, sizeof(pkt)) : (int)w;
        if (got != want)
            QD_FAIL("long header with worker %u's CID reached slot %d, want %d", w, got, want);
        /* a client's 18-byte DCID without our tag is a new connection */
        pkt[6] ^= 0x01;
        sendto(client, pkt, sizeof(pkt), 0, (struct sockaddr *)&addr, sizeof(addr));
        got = arrived();
        if (got != expected_new(pkt, sizeof(pkt)))
            QD_FAIL("an untagged 18-byte DCID reached slot %d, want %d", got,
                    expected_new(pkt, sizeof(pkt)));
    }
}

static void test_tcp(void)
{
    int lsocks[SLOTS], counts[SLOTS] = {0};
    qd_buf err;

    qd_buf_init(&err);
    if (group(SOCK_STREAM, lsocks) < 0) {
        QD_FAIL("TCP sockets: %s", strerror(errno));
        return;
    }
    QD_EXPECT_INT(listener_bpf_tcp(lsocks[0], cur, 2, &err), 0);
    for (int i = 0; i < 60; i++) {
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c < 0 || connect(c, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
            QD_FAIL("connect: %s", strerror(errno));
            return;
        }
        for (int tries = 0; tries < 100; tries++) {
            int got = -1;
            for (int s = 0; s < SLOTS && got < 0; s++) {
                int a = accept(lsocks[s], NULL, NULL);
                if (a >= 0) {
                    got = s;
                    close(a);
                }
            }
            if (got >= 0) {
                counts[got]++;
                break;
            }
            usleep(1000);
        }
        close(c);
    }
    if (counts[4] + counts[5] != 60 || counts[4] < 10 || counts[5] < 10)
        QD_FAIL("60 connections: %d %d %d %d %d %d per slot, want all on 4 and 5", counts[0],
                counts[1], counts[2], counts[3], counts[4], counts[5]);
    for (int i = 0; i < SLOTS; i++)
        close(lsocks[i]);
    qd_buf_release(&err);
}

int main(void)
{
    QD_RUN(test_udp);
    QD_RUN(test_long_ours);
    QD_RUN(test_tcp);
    QD_TEST_DONE();
}
