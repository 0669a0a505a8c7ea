/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the configuration parser: any bytes must give
 * either a configuration or error lines, never a crash or a leak; a
 * configuration that parses must dump to text that parses to the same.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "qd_buf.h"
#include "qd_conf.h"
#include "qd_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qd_conf c, again;
    qd_buf errs, dump, diff;

    qd_conf_init(&c);
    qd_buf_init(&errs);
    if (qd_conf_parse(&c, "fuzz", (const char *)data, size, &errs) == 0) {
        qd_buf_init(&dump);
        qd_buf_init(&diff);
        qd_conf_dump(&c, QD_CONF_DUMP_EFFECTIVE, &dump);
        qd_conf_init(&again);
        if (qd_conf_parse(&again, "dump", qd_buf_str(&dump), dump.len, &errs) != 0)
            qd_panic("dump does not parse back: %s", qd_buf_str(&errs));
        if (qd_conf_diff(&c, &again, false, &diff) != 0)
            qd_panic("dump differs in: %s", qd_buf_str(&diff));
        qd_conf_release(&again);
        qd_buf_release(&dump);
        qd_buf_release(&diff);
    }
    qd_conf_release(&c);
    qd_buf_release(&errs);
    return 0;
}
