/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the proxy table parser (qd_proxy.c): any bytes must
 * give either a table or error lines, never a crash or a leak; a table
 * that parses must dump to text that parses to the same dump, and every
 * route must match a request for its own host and prefix.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <arpa/inet.h>
#include <string.h>

#include "qd_buf.h"
#include "qd_log.h"
#include "qd_proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qd_proxy p, again;
    qd_buf errs, dump, dump2;

    qd_proxy_init(&p);
    qd_buf_init(&errs);
    if (qd_proxy_parse(&p, "fuzz", (const char *)data, size, &errs) == 0) {
        qd_buf_init(&dump);
        qd_buf_init(&dump2);
        qd_proxy_dump(&p, "", &dump);
        qd_proxy_init(&again);
        if (qd_proxy_parse(&again, "dump", qd_buf_str(&dump), dump.len, &errs) != 0)
            qd_panic("dump does not parse back: %s", qd_buf_str(&errs));
        qd_proxy_dump(&again, "", &dump2);
        if (strcmp(qd_buf_str(&dump), qd_buf_str(&dump2)) != 0)
            qd_panic("dump differs:\n%s---\n%s", qd_buf_str(&dump), qd_buf_str(&dump2));
        for (size_t i = 0; i < p.nroutes; i++) {
            const char *host = strcmp(p.routes[i].host, "*") == 0 ? "any" : p.routes[i].host;
            if (qd_proxy_match(&p, host, p.routes[i].prefix) == NULL)
                qd_panic("route %zu does not match its own host and prefix", i);
        }
        for (size_t i = 0; i < p.ntrust; i++) { /* a network trusts its own address */
            char ip[64];
            inet_ntop(p.trust[i].family, p.trust[i].addr, ip, sizeof(ip));
            if (!qd_proxy_trusted(&p, ip))
                qd_panic("trust %zu does not trust its own address %s", i, ip);
        }
        qd_proxy_release(&again);
        qd_buf_release(&dump);
        qd_buf_release(&dump2);
    }
    qd_proxy_release(&p);
    qd_buf_release(&errs);
    return 0;
}
